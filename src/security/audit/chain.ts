/**
 * The audit chain's arithmetic. Each record's hash is SHA-256 over a canonical encoding of its
 * fields and the previous record's hash, so changing, removing or moving any record breaks
 * every link after it. Checkpoints sign (seq, hash) with a server key: a rewrite of the whole
 * chain after a point cannot produce them without the key. The key is either an HMAC-SHA256
 * secret (whoever verifies must hold it, and could also sign) or an Ed25519 key pair (the server
 * signs with the private key; anyone can verify with the public key, which cannot sign).
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { InvalidInputError } from '../../core/errors.js';

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

export interface CheckpointVerifier {
  /** The public name written with each checkpoint: 16 hex digits (HMAC) or `ed25519:` and 16 hex digits. */
  readonly keyId: string;
  /** What kind of key, for messages. */
  readonly algorithm: 'hmac-sha256' | 'ed25519';
  verify(checkpoint: AuditCheckpoint): boolean;
}

export interface CheckpointSigner extends CheckpointVerifier {
  sign(seq: number, at: string, hash: string): string;
}

function checkpointBytes(seq: number, at: string, hash: string): Buffer {
  return Buffer.from(canonicalJson({ v: 1, seq, at, hash }));
}

/** A shared secret: signs and verifies. */
export class HmacCheckpointKey implements CheckpointSigner {
  readonly algorithm = 'hmac-sha256';
  readonly keyId: string;

  constructor(private readonly key: Buffer) {
    if (key.length < 32) throw new InvalidInputError('the audit signing key must hold at least 32 bytes');
    this.keyId = keyIdOf(key);
  }

  sign(seq: number, at: string, hash: string): string {
    return signCheckpoint(this.key, seq, at, hash);
  }

  verify(checkpoint: AuditCheckpoint): boolean {
    return checkpointSignatureValid(this.key, checkpoint);
  }
}

const ED25519_PREFIX = 'ed25519:';

function ed25519KeyId(publicKey: KeyObject): string {
  return ED25519_PREFIX + createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

function requireEd25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== 'ed25519') throw new InvalidInputError(`${what} is a ${key.asymmetricKeyType ?? key.type} key, not Ed25519`);
  return key;
}

/** An Ed25519 public key: verifies checkpoints, cannot make them. */
export class Ed25519CheckpointVerifier implements CheckpointVerifier {
  readonly algorithm = 'ed25519';
  readonly keyId: string;
  private readonly publicKey: KeyObject;

  /** `pem`: an SPKI public key (`openssl pkey -pubout`) or a PKCS#8 private key (its public half is used). */
  constructor(pem: string | Buffer | KeyObject) {
    let key: KeyObject;
    try {
      key = typeof pem === 'object' && !Buffer.isBuffer(pem) ? pem : createPublicKey(pem);
    } catch (error) {
      throw new InvalidInputError(`the audit public key is not a PEM public or private key (${(error as Error).message})`);
    }
    this.publicKey = requireEd25519(key.type === 'private' ? createPublicKey(key) : key, 'the audit public key');
    this.keyId = ed25519KeyId(this.publicKey);
  }

  verify(checkpoint: AuditCheckpoint): boolean {
    if (!/^[A-Za-z0-9_-]{86}$/.test(checkpoint.signature)) return false;
    return verify(null, checkpointBytes(checkpoint.seq, checkpoint.at, checkpoint.hash), this.publicKey, Buffer.from(checkpoint.signature, 'base64url'));
  }
}

/** An Ed25519 private key (PKCS#8 PEM, as `openssl genpkey -algorithm ed25519` writes). */
export class Ed25519CheckpointSigner implements CheckpointSigner {
  readonly algorithm = 'ed25519';
  readonly keyId: string;
  private readonly privateKey: KeyObject;
  private readonly verifier: Ed25519CheckpointVerifier;

  constructor(pem: string | Buffer) {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (error) {
      throw new InvalidInputError(`the audit signing key is not a PEM private key (${(error as Error).message})`);
    }
    this.privateKey = requireEd25519(key, 'the audit signing key');
    this.verifier = new Ed25519CheckpointVerifier(createPublicKey(this.privateKey));
    this.keyId = this.verifier.keyId;
  }

  /** The public key, PEM (SPKI), for whoever verifies. */
  publicKeyPem(): string {
    return createPublicKey(this.privateKey).export({ type: 'spki', format: 'pem' }).toString();
  }

  sign(seq: number, at: string, hash: string): string {
    return sign(null, checkpointBytes(seq, at, hash), this.privateKey).toString('base64url');
  }

  verify(checkpoint: AuditCheckpoint): boolean {
    return this.verifier.verify(checkpoint);
  }
}
