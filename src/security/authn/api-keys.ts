/**
 * API keys: `inferd_<id>_<secret>`. The id (16 hex digits) is public and names the key in
 * lists and logs; the secret is 32 random bytes (base64url) shown once at creation. Only
 * HMAC-SHA256(pepper, id:secret) is stored, so a copy of the database does not yield usable
 * keys without the server's pepper. Rotation gives the same id a new secret and keeps the old
 * one valid for an overlap window, so clients can switch without downtime.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { InferdError, InvalidInputError } from '../../core/errors.js';
import type { SqlDriver } from '../../registry/sql/driver.js';
import { num, numOrNull, text, textOrNull, type Row } from '../database.js';

export const API_KEY_PREFIX = 'inferd_';
const KEY_PATTERN = /^inferd_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ID_PATTERN = /^[0-9a-f]{16}$/;

export interface ApiKeyRecord {
  id: string;
  name: string;
  roles: string[];
  /** Model names or patterns the key may touch; null: every model its roles allow. */
  models: string[] | null;
  createdAt: number;
  createdBy: string;
  expiresAt: number | null;
  rotatedAt: number | null;
  /** Until when the secret before the last rotation still works. */
  previousExpiresAt: number | null;
  revokedAt: number | null;
}

/** What authentication needs: the record and the hashes it may match. */
interface StoredKey {
  record: ApiKeyRecord;
  hash: Buffer;
  previousHash: Buffer | null;
  /** When this copy was read from the database. */
  loadedAt: number;
  /** Set when the cache lets go of this copy (rotation, revocation, a re-read, eviction). */
  released?: boolean;
}

/** A cached key that does not match is re-read at most this often (a rotation on another replica). */
const STALE_RECHECK_MS = 1000;

export interface NewApiKey {
  name: string;
  roles: string[];
  models?: string[];
  /** Absolute expiry, epoch ms. */
  expiresAt?: number;
}

/** Receives key changes for the audit log. */
export type KeyChangeListener = (change: { action: 'keys.create' | 'keys.rotate' | 'keys.revoke'; id: string; actor: string; details: Record<string, unknown> }) => Promise<void>;

export function parseApiKey(presented: string): { id: string; secret: string } | undefined {
  const match = KEY_PATTERN.exec(presented);
  return match === null ? undefined : { id: match[1]!, secret: match[2]! };
}

export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX);
}

function rowToStored(row: Row, loadedAt = Date.now()): StoredKey {
  const models = textOrNull(row, 'models');
  const previous = textOrNull(row, 'previous_hash');
  return {
    record: {
      id: text(row, 'id'),
      name: text(row, 'name'),
      roles: JSON.parse(text(row, 'roles')) as string[],
      models: models === null ? null : (JSON.parse(models) as string[]),
      createdAt: num(row, 'created_at'),
      createdBy: text(row, 'created_by'),
      expiresAt: numOrNull(row, 'expires_at'),
      rotatedAt: numOrNull(row, 'rotated_at'),
      previousExpiresAt: numOrNull(row, 'previous_expires_at'),
      revokedAt: numOrNull(row, 'revoked_at'),
    },
    hash: Buffer.from(text(row, 'hash'), 'hex'),
    previousHash: previous === null ? null : Buffer.from(previous, 'hex'),
    loadedAt,
  };
}

export interface ApiKeyStoreOptions {
  /** Server secret for the keyed hash; at least 32 bytes. */
  pepper: Buffer;
  /** How long a looked-up key is trusted before the database is read again. Default 5000 ms. */
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  onChange?: KeyChangeListener;
  now?: () => number;
}

export class ApiKeyStore {
  private readonly pepper: Buffer;
  private readonly cache: LRUCache<string, StoredKey | false> | undefined;
  /**
   * Presented keys already proven against a cached record: a repeat request skips the HMAC.
   * An entry counts only while the record it was proven against is still the cached one, so
   * a rotation, revocation or cache expiry sends the next request through the full check.
   */
  private readonly verified: LRUCache<string, { stored: StoredKey; previous: boolean }> | undefined;
  /** The last presented key found in `verified`, and what was found. */
  private lastPresented: string | undefined;
  private lastHit: { stored: StoredKey; previous: boolean } | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly onChange: KeyChangeListener | undefined;

  constructor(
    private readonly db: SqlDriver,
    options: ApiKeyStoreOptions,
  ) {
    if (options.pepper.length < 32) throw new InvalidInputError('the API key pepper must hold at least 32 bytes');
    this.pepper = options.pepper;
    this.now = options.now ?? Date.now;
    this.onChange = options.onChange;
    const ttl = options.cacheTtlMs ?? 5000;
    // Misses (false) are cached too, so a flood of made-up ids does not reach the database.
    this.ttlMs = ttl;
    this.cache =
      ttl > 0
        ? new LRUCache<string, StoredKey | false>({
            max: options.cacheMaxEntries ?? 10_000,
            ttl,
            ttlAutopurge: false,
            // A copy the cache drops can no longer vouch for remembered keys.
            dispose: (value) => {
              if (value !== false) value.released = true;
            },
          })
        : undefined;
    this.verified = ttl > 0 ? new LRUCache({ max: options.cacheMaxEntries ?? 10_000 }) : undefined;
  }

  private hash(id: string, secret: string): Buffer {
    return createHmac('sha256', this.pepper).update(`${id}:${secret}`).digest();
  }

  private newSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  async create(input: NewApiKey, actor: string): Promise<{ key: string; record: ApiKeyRecord }> {
    if (input.name.trim() === '') throw new InvalidInputError('an API key needs a name');
    if (input.roles.length === 0) throw new InvalidInputError('an API key needs at least one role');
    if (input.models !== undefined && input.models.length === 0) throw new InvalidInputError('--model needs at least one name or pattern');
    const id = randomBytes(8).toString('hex');
    const secret = this.newSecret();
    const now = this.now();
    await this.db.run(
      'INSERT INTO api_keys (id, name, hash, roles, models, created_at, created_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [id, input.name, this.hash(id, secret).toString('hex'), JSON.stringify(input.roles), input.models === undefined ? null : JSON.stringify(input.models), now, actor, input.expiresAt ?? null],
    );
    this.cache?.delete(id);
    await this.onChange?.({ action: 'keys.create', id, actor, details: { name: input.name, roles: input.roles, models: input.models ?? null } });
    const record = await this.get(id);
    return { key: `${API_KEY_PREFIX}${id}_${secret}`, record: record! };
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    return (await this.load(id))?.record;
  }

  private async load(id: string): Promise<StoredKey | undefined> {
    const rows = await this.db.all('SELECT * FROM api_keys WHERE id = $1', [id]);
    return rows[0] === undefined ? undefined : rowToStored(rows[0]);
  }

  async list(): Promise<ApiKeyRecord[]> {
    const rows = await this.db.all('SELECT * FROM api_keys ORDER BY created_at, id');
    return rows.map((r) => rowToStored(r).record);
  }

  /** A new secret for the same key; the old one keeps working for `overlapMs`. */
  async rotate(id: string, overlapMs: number, actor: string): Promise<{ key: string; record: ApiKeyRecord }> {
    requireId(id);
    if (!Number.isFinite(overlapMs) || overlapMs < 0) throw new InvalidInputError('the overlap must be a duration >= 0');
    const secret = this.newSecret();
    const now = this.now();
    const changed = await this.db.transaction(async (tx) => {
      const rows = await tx.all(`SELECT * FROM api_keys WHERE id = $1${this.db.forUpdate}`, [id]);
      if (rows[0] === undefined) return false;
      const current = rowToStored(rows[0]);
      if (current.record.revokedAt !== null) throw new InferdError('FAILED_PRECONDITION', `API key ${id} is revoked; create a new one`);
      await tx.run('UPDATE api_keys SET hash = $1, previous_hash = $2, previous_expires_at = $3, rotated_at = $4 WHERE id = $5', [
        this.hash(id, secret).toString('hex'),
        overlapMs > 0 ? current.hash.toString('hex') : null,
        overlapMs > 0 ? now + overlapMs : null,
        now,
        id,
      ]);
      return true;
    });
    if (!changed) throw new InferdError('NOT_FOUND', `API key ${id} is not found`);
    this.cache?.delete(id);
    await this.onChange?.({ action: 'keys.rotate', id, actor, details: { overlap_ms: overlapMs } });
    const record = await this.get(id);
    return { key: `${API_KEY_PREFIX}${id}_${secret}`, record: record! };
  }

  async revoke(id: string, actor: string): Promise<ApiKeyRecord> {
    requireId(id);
    const changed = await this.db.run('UPDATE api_keys SET revoked_at = $1, previous_hash = NULL, previous_expires_at = NULL WHERE id = $2 AND revoked_at IS NULL', [this.now(), id]);
    this.cache?.delete(id);
    const record = await this.get(id);
    if (record === undefined) throw new InferdError('NOT_FOUND', `API key ${id} is not found`);
    if (changed > 0) await this.onChange?.({ action: 'keys.revoke', id, actor, details: { name: record.name } });
    return record;
  }

  /**
   * The key a presented string proves when that was already established against the cached
   * record (no HMAC, no promise); undefined means "not known here": call `authenticate`.
   */
  authenticateCached(presented: string): ApiKeyRecord | undefined {
    // A run of requests with one key skips the LRU lookup; the entry is checked the same way.
    let hit = presented === this.lastPresented ? this.lastHit : undefined;
    if (hit === undefined) {
      hit = this.verified?.get(presented);
      if (hit === undefined) return undefined;
      this.lastPresented = presented;
      this.lastHit = hit;
    }
    const { stored } = hit;
    // One clock read serves both checks unless a test clock stands in for the validity one.
    const wall = Date.now();
    if (stored.released === true || wall - stored.loadedAt >= this.ttlMs) {
      this.verified!.delete(presented);
      this.lastPresented = undefined;
      this.lastHit = undefined;
      return undefined;
    }
    return this.valid(stored, hit.previous, this.now === Date.now ? wall : this.now()) ? stored.record : undefined;
  }

  /**
   * The key a presented string proves, or undefined (malformed, unknown, wrong secret, expired,
   * revoked, rotated out). The caller learns nothing about which: all are "invalid credentials".
   */
  async authenticate(presented: string): Promise<ApiKeyRecord | undefined> {
    const parsed = parseApiKey(presented);
    if (parsed === undefined) return undefined;
    let stored = this.cache?.get(parsed.id);
    const cached = stored !== undefined;
    if (stored === undefined) {
      stored = (await this.load(parsed.id)) ?? false;
      this.cache?.set(parsed.id, stored);
    }
    // The hash is computed even for unknown ids, so timing does not tell known ids apart.
    const candidate = this.hash(parsed.id, parsed.secret);
    if (stored === false) return undefined;
    const match = this.check(stored, candidate, presented);
    if (match !== undefined || !cached || Date.now() - stored.loadedAt < STALE_RECHECK_MS) return match;
    // The key may have been rotated on another replica since it was cached: read it once more.
    const fresh = await this.load(parsed.id);
    this.cache?.set(parsed.id, fresh ?? false);
    return fresh === undefined ? undefined : this.check(fresh, candidate, presented);
  }

  private check(stored: StoredKey, candidate: Buffer, presented: string): ApiKeyRecord | undefined {
    let previous: boolean;
    if (timingSafeEqual(candidate, stored.hash)) previous = false;
    else if (stored.previousHash !== null && timingSafeEqual(candidate, stored.previousHash)) previous = true;
    else return undefined;
    if (!this.valid(stored, previous)) return undefined;
    if (stored.released !== true) this.verified?.set(presented, { stored, previous });
    return stored.record;
  }

  /** Not revoked, not expired, and a previous secret only within its overlap. */
  private valid(stored: StoredKey, previous: boolean, now = this.now()): boolean {
    const { record } = stored;
    if (record.revokedAt !== null || (record.expiresAt !== null && now >= record.expiresAt)) return false;
    return !previous || (record.previousExpiresAt !== null && now < record.previousExpiresAt);
  }
}

function requireId(id: string): void {
  if (!ID_PATTERN.test(id)) throw new InvalidInputError(`'${id}' is not an API key id (16 hex digits)`);
}
