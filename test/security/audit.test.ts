/**
 * The audit chain on both databases (SQLite file, real PostgreSQL): records append in order
 * from concurrent writers, and editing, deleting, swapping or rewriting any record, truncating
 * the tail and forging a checkpoint are each detected and named.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InferdError } from '../../src/core/errors.js';
import type { SqlDriver } from '../../src/registry/sql/driver.js';
import { canonicalJson, Ed25519CheckpointSigner, Ed25519CheckpointVerifier, GENESIS_HASH, recordHash } from '../../src/security/audit/chain.js';
import { AuditLog } from '../../src/security/audit/log.js';
import { AuditPolicy } from '../../src/security/audit/policy.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { context, tempSqlite } from './support.js';

describe('canonical encoding', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  });
});

const KEY = randomBytes(32);

type Backend = { name: string; open: () => Promise<{ db: SqlDriver; cleanup: () => Promise<void> }> };

let postgres: PostgresServer | undefined;
let pgCount = 0;

const backends: Backend[] = [
  { name: 'sqlite', open: tempSqlite },
  {
    name: 'postgres',
    open: async () => {
      postgres ??= await startPostgres();
      const url = await postgres.createDatabase(`audit_${++pgCount}`);
      const db = await openSecurityDatabase(url);
      return { db, cleanup: () => db.close() };
    },
  },
];

afterAll(async () => {
  await postgres?.stop();
});

describe.each(backends)('audit chain on $name', (backend) => {
  let db: SqlDriver;
  let cleanup: () => Promise<void>;
  let log: AuditLog;

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
  }, 60_000);

  afterAll(async () => {
    await cleanup();
  });

  beforeEach(async () => {
    await db.run('DELETE FROM audit_log');
    await db.run('DELETE FROM audit_checkpoints');
    log = new AuditLog(db, { signingKey: KEY, checkpointEvery: 5 });
    for (let i = 1; i <= 12; i++) {
      await log.append({ actor: `key:${i}`, action: 'model.load', target: `model/m${i}`, outcome: 'ok', details: { n: i } });
    }
  });

  it('links every record to the previous one and verifies clean', async () => {
    const records = [];
    for await (const r of log.records()) records.push(r);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(records[0]!.prev_hash).toBe(GENESIS_HASH);
    for (let i = 1; i < records.length; i++) expect(records[i]!.prev_hash).toBe(records[i - 1]!.hash);
    expect((await log.checkpoints()).map((c) => c.seq)).toEqual([5, 10]);
    const result = await log.verify();
    expect(result).toMatchObject({ ok: true, records: 12, checkpoints: 2, signaturesChecked: 2, problems: [] });
  });

  it('concurrent appends from two writers make one unbroken chain', async () => {
    const other = new AuditLog(db, { signingKey: KEY, checkpointEvery: 5 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? log : other).append({ actor: 'x', action: 'registry.alias', target: 'model/a', outcome: 'ok' })));
    const result = await log.verify();
    expect(result.problems).toEqual([]);
    expect(result.records).toBe(32);
  });

  it('an edited record is named', async () => {
    await db.run(`UPDATE audit_log SET details = '{"n":999}' WHERE seq = 7`);
    const result = await log.verify();
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([{ kind: 'edited', seq: 7, message: 'record 7 was edited: its content no longer matches its hash' }]);
  });

  it('an edited actor is named', async () => {
    await db.run(`UPDATE audit_log SET actor = 'key:someone-else' WHERE seq = 2`);
    expect((await log.verify()).problems.map((p) => [p.kind, p.seq])).toEqual([['edited', 2]]);
  });

  it('a deleted record is named', async () => {
    await db.run('DELETE FROM audit_log WHERE seq = 8');
    const result = await log.verify();
    expect(result.problems).toEqual([{ kind: 'deleted', seq: 8, message: 'record 8 is missing (deleted)' }]);
  });

  it('deleted records at the start are named', async () => {
    await db.run('DELETE FROM audit_log WHERE seq <= 2');
    expect((await log.verify()).problems).toEqual([{ kind: 'deleted', seq: 1, message: 'records 1 to 2 are missing (deleted)' }]);
  });

  it('swapped records are named as re-ordered', async () => {
    await db.run('UPDATE audit_log SET seq = -1 WHERE seq = 3');
    await db.run('UPDATE audit_log SET seq = 3 WHERE seq = 9');
    await db.run('UPDATE audit_log SET seq = 9 WHERE seq = -1');
    const result = await log.verify();
    expect(result.problems.filter((p) => p.kind === 'reordered')).toEqual([
      { kind: 'reordered', seq: 3, message: 'record 3 holds the content of record 9 (records were re-ordered)' },
      { kind: 'reordered', seq: 9, message: 'record 9 holds the content of record 3 (records were re-ordered)' },
    ]);
  });

  it('a record rewritten with a freshly computed hash is named through the next link', async () => {
    const rows = await db.all('SELECT * FROM audit_log WHERE seq = 6');
    const row = rows[0] as Record<string, string | number>;
    const forged = { seq: 6, at: String(row['at']), actor: 'key:innocent', action: String(row['action']), target: String(row['target']), outcome: 'ok', details: String(row['details']), prev_hash: String(row['prev_hash']) };
    await db.run('UPDATE audit_log SET actor = $1, hash = $2 WHERE seq = 6', [forged.actor, recordHash(forged)]);
    const result = await log.verify();
    expect(result.problems.map((p) => [p.kind, p.seq])).toEqual([['rewritten', 6]]);
  });

  it('a rewritten tail is caught by the signed checkpoint', async () => {
    // Rewrite records 9..12 consistently (fresh hashes, fresh links): only the checkpoint at 10 knows.
    const rows = await db.all('SELECT * FROM audit_log WHERE seq >= 9 ORDER BY seq');
    let prev = String((await db.all('SELECT hash FROM audit_log WHERE seq = 8'))[0]!['hash']);
    for (const row of rows) {
      const forged = { seq: Number(row['seq']), at: String(row['at']), actor: 'key:innocent', action: String(row['action']), target: String(row['target']), outcome: 'ok', details: String(row['details']), prev_hash: prev };
      const hash = recordHash(forged);
      await db.run('UPDATE audit_log SET actor = $1, prev_hash = $2, hash = $3 WHERE seq = $4', [forged.actor, prev, hash, forged.seq]);
      prev = hash;
    }
    expect((await log.verify()).problems.map((p) => [p.kind, p.seq])).toEqual([['checkpoint_mismatch', 10]]);
  });

  it('a truncated tail is caught by the checkpoint that covers it', async () => {
    await log.checkpoint();
    await db.run('DELETE FROM audit_log WHERE seq >= 11');
    const result = await log.verify();
    expect(result.problems).toEqual([{ kind: 'deleted', seq: 12, message: 'records 11 to 12 are missing (deleted from the end; a signed checkpoint covers record 12)' }]);
  });

  it('a forged checkpoint signature is caught; another key is reported as such', async () => {
    await db.run(`UPDATE audit_checkpoints SET signature = $1 WHERE seq = 5`, ['00'.repeat(32)]);
    expect((await log.verify()).problems.map((p) => [p.kind, p.seq])).toEqual([['bad_signature', 5]]);
    const wrongKey = await log.verify(randomBytes(32));
    expect(wrongKey.problems.map((p) => p.kind)).toEqual(['unknown_key', 'unknown_key']);
  });

  it('the audit policy records writes with caller and outcome, not reads', async () => {
    await db.run('DELETE FROM audit_log');
    const policy = new AuditPolicy({ log });
    const ctx = context({}, 'fraud');
    ctx.identity = { subject: 'key:abc', method: 'api_key', roles: ['deployer'] };
    await policy.control(ctx, { action: 'model.metadata', write: false, model: 'fraud' }, async () => ({}));
    await policy.control(ctx, { action: 'registry.alias', write: true, model: 'fraud', details: { alias: 'champion', to: 3 } }, async () => ({}));
    await expect(policy.control(ctx, { action: 'model.load', write: true, model: 'fraud' }, async () => Promise.reject(new InferdError('NOT_FOUND', 'no such model')))).rejects.toThrow(/no such/);
    policy.recordAuthFailure(context({}, 'fraud'), { method: 'api_key', why: 'revoked', keyId: '0123456789abcdef' });
    await new Promise((r) => setTimeout(r, 100));
    const records = [];
    for await (const r of log.records()) records.push(r);
    expect(records.map((r) => [r.actor, r.action, r.target, r.outcome])).toEqual([
      ['key:abc', 'registry.alias', 'model/fraud', 'ok'],
      ['key:abc', 'model.load', 'model/fraud', 'error:NOT_FOUND'],
      ['key:0123456789abcdef', 'auth.failure', 'model/fraud', 'denied'],
    ]);
    expect(JSON.parse(records[0]!.details)).toMatchObject({ alias: 'champion', to: 3 });
  });
});

function ed25519Pair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

describe('Ed25519-signed checkpoints', () => {
  let db: SqlDriver;
  let cleanup: () => Promise<void>;
  const pair = ed25519Pair();
  const signer = new Ed25519CheckpointSigner(pair.privatePem);
  /** What a verifier holds: the public key only. */
  const publicOnly = new Ed25519CheckpointVerifier(pair.publicPem);

  beforeAll(async () => {
    ({ db, cleanup } = await tempSqlite());
  });

  afterAll(async () => {
    await cleanup();
  });

  beforeEach(async () => {
    await db.run('DELETE FROM audit_log');
    await db.run('DELETE FROM audit_checkpoints');
    const log = new AuditLog(db, { signingKey: signer, checkpointEvery: 4 });
    for (let i = 1; i <= 9; i++) await log.append({ actor: `key:${i}`, action: 'model.load', target: `model/m${i}`, outcome: 'ok' });
  });

  it('verifies with the public key alone', async () => {
    const checkpoints = await new AuditLog(db).checkpoints();
    expect(checkpoints.map((c) => c.seq)).toEqual([4, 8]);
    expect(checkpoints[0]!.keyId).toBe(signer.keyId);
    expect(signer.keyId).toMatch(/^ed25519:[0-9a-f]{16}$/);
    expect(publicOnly.keyId).toBe(signer.keyId);
    expect(await new AuditLog(db).verify(publicOnly)).toMatchObject({ ok: true, checkpoints: 2, signaturesChecked: 2, problems: [] });
    // The PEM the server can hand out is the same key.
    expect(new Ed25519CheckpointVerifier(signer.publicKeyPem()).keyId).toBe(signer.keyId);
  });

  it('a forged signature, an edited checkpoint and a checkpoint signed by another key under this key id are each caught', async () => {
    const log = new AuditLog(db);
    await db.run('UPDATE audit_checkpoints SET signature = $1 WHERE seq = 4', [randomBytes(64).toString('base64url')]);
    expect((await log.verify(publicOnly)).problems.map((p) => [p.kind, p.seq])).toEqual([['bad_signature', 4]]);

    // Moving a checkpoint's hash (to cover a rewritten chain) breaks its signature and its match.
    await db.run(`UPDATE audit_checkpoints SET hash = $1 WHERE seq = 8`, ['ab'.repeat(32)]);
    expect((await log.verify(publicOnly)).problems.map((p) => [p.kind, p.seq])).toEqual([
      ['bad_signature', 4],
      ['bad_signature', 8],
      ['checkpoint_mismatch', 8],
    ]);

    // An attacker's own key pair, claiming this key's id: a valid Ed25519 signature, but not by this key.
    await db.run('DELETE FROM audit_checkpoints');
    const forger = new Ed25519CheckpointSigner(ed25519Pair().privatePem);
    const head = (await db.all('SELECT hash, at FROM audit_log WHERE seq = 9'))[0]!;
    const at = String(head['at']);
    await db.run('INSERT INTO audit_checkpoints (seq, at, hash, key_id, signature) VALUES ($1, $2, $3, $4, $5)', [9, at, String(head['hash']), signer.keyId, forger.sign(9, at, String(head['hash']))]);
    expect((await log.verify(publicOnly)).problems.map((p) => [p.kind, p.seq])).toEqual([['bad_signature', 9]]);
    // Verified with another public key, the checkpoint is named as signed by an unknown key.
    expect((await log.verify(new Ed25519CheckpointVerifier(ed25519Pair().publicPem))).problems.map((p) => p.kind)).toEqual(['unknown_key']);
  });

  it('refuses keys that are not Ed25519, naming the problem', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => new Ed25519CheckpointSigner(rsa)).toThrow(/rsa key, not Ed25519/);
    expect(() => new Ed25519CheckpointVerifier('not a key')).toThrow(/not a PEM public or private key/);
  });
});
