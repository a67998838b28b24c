/**
 * The audit chain's arithmetic. Each record's hash is SHA-256 over a canonical encoding of its
 * fields and the previous record's hash, so changing, removing or moving any record breaks
 * every link after it. Checkpoints sign (seq, hash) with a server key: a rewrite of the whole
 * chain after a point cannot produce them without the key.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

export interface AuditRecord {
  seq: number;
  /** ISO-8601 UTC with milliseconds. */
  at: string;
  /** Who: an identity subject (`key:<id>`, a JWT `sub`, `cert:<cn>`), or `system`, `cli:<user>`. */
  actor: string;
  /** What, as a control action (`model.load`, `registry.alias`, `keys.revoke`, `auth.failure`...). */
  action: string;
  /** On what: `model/<name>[@version]`, `key/<id>`, `-`. */
  target: string;
  /** `ok`, `denied`, or `error:<CODE>`. */
  outcome: string;
  /** Canonical JSON text of the details object. */
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditCheckpoint {
  seq: number;
  at: string;
  hash: string;
  keyId: string;
  signature: string;
}

/**
 * JSON with object keys sorted at every level and no insignificant white space: the same value
 * always gives the same bytes. Undefined members are dropped; bigints become strings.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : 'null';
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && typeof v !== 'function')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return 'null';
}

export function recordHash(record: Omit<AuditRecord, 'hash'>): string {
  const body = canonicalJson({
    v: 1,
    seq: record.seq,
    at: record.at,
    actor: record.actor,
    action: record.action,
    target: record.target,
    outcome: record.outcome,
    details: record.details,
    prev_hash: record.prev_hash,
  });
  return createHash('sha256').update(body).digest('hex');
}

/** A short public name of a checkpoint key, so a verifier can tell which key signed. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export function signCheckpoint(key: Buffer, seq: number, at: string, hash: string): string {
  return createHmac('sha256', key).update(canonicalJson({ v: 1, seq, at, hash })).digest('hex');
}

export function checkpointSignatureValid(key: Buffer, checkpoint: AuditCheckpoint): boolean {
  const expected = Buffer.from(signCheckpoint(key, checkpoint.seq, checkpoint.at, checkpoint.hash), 'hex');
  const actual = Buffer.from(checkpoint.signature, 'hex');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
