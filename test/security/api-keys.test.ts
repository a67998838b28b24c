/**
 * The API key store on both databases (SQLite file, real PostgreSQL): only a keyed hash is
 * stored, the pepper matters, expiry and revocation hold, rotation keeps the id and honours
 * its overlap window, and a cached key is dropped when revoked in the same process.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqlDriver } from '../../src/registry/sql/driver.js';
import { ApiKeyStore, parseApiKey } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { tempSqlite } from './support.js';

let postgres: PostgresServer | undefined;

afterAll(async () => {
  await postgres?.stop();
});

const backends = [
  { name: 'sqlite', open: tempSqlite },
  {
    name: 'postgres',
    open: async () => {
      postgres ??= await startPostgres();
      const db = await openSecurityDatabase(await postgres.createDatabase('keys'));
      return { db, cleanup: () => db.close() };
    },
  },
];

describe.each(backends)('API keys on $name', (backend) => {
  let db: SqlDriver;
  let cleanup: () => Promise<void>;
  let now = Date.parse('2026-01-01T00:00:00Z');
  const pepper = randomBytes(32);
  let store: ApiKeyStore;

  beforeAll(async () => {
    ({ db, cleanup } = await backend.open());
    store = new ApiKeyStore(db, { pepper, cacheTtlMs: 60_000, now: () => now });
  }, 60_000);

  afterAll(async () => {
    await cleanup();
  });

  it('stores only a keyed hash; another pepper does not verify', async () => {
    const { key, record } = await store.create({ name: 'svc', roles: ['reader', 'writer'], models: ['a', 'b*'] }, 'tester');
    const parsed = parseApiKey(key)!;
    expect(parsed.id).toBe(record.id);
    const row = (await db.all('SELECT * FROM api_keys WHERE id = $1', [record.id]))[0]!;
    expect(JSON.stringify(row)).not.toContain(parsed.secret);
    expect(String(row['hash'])).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.authenticate(key)).toMatchObject({ id: record.id, roles: ['reader', 'writer'], models: ['a', 'b*'], createdBy: 'tester' });
    const otherPepper = new ApiKeyStore(db, { pepper: randomBytes(32), cacheTtlMs: 0 });
    expect(await otherPepper.authenticate(key)).toBeUndefined();
    expect(await store.authenticate(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
  });

  it('expires, rotates with an overlap, and revokes (also through the cache)', async () => {
    const expiring = await store.create({ name: 'short', roles: ['reader'], expiresAt: now + 1000 }, 't');
    expect(await store.authenticate(expiring.key)).toBeDefined();
    now += 1000;
    expect(await store.authenticate(expiring.key)).toBeUndefined();

    const { key: first, record } = await store.create({ name: 'rot', roles: ['reader'] }, 't');
    expect(await store.authenticate(first)).toBeDefined();
    const { key: second } = await store.rotate(record.id, 5000, 't');
    expect(parseApiKey(second)!.id).toBe(record.id);
    expect(await store.authenticate(first)).toBeDefined();
    expect(await store.authenticate(second)).toBeDefined();
    const { key: third } = await store.rotate(record.id, 0, 't');
    // A second rotation ends the first secret at once, whatever its window was.
    expect(await store.authenticate(first)).toBeUndefined();
    expect(await store.authenticate(second)).toBeUndefined();
    expect(await store.authenticate(third)).toBeDefined();

    await store.revoke(record.id, 't');
    expect(await store.authenticate(third)).toBeUndefined();
    await expect(store.rotate(record.id, 0, 't')).rejects.toThrow(/revoked/);
    await expect(store.revoke('0000000000000000', 't')).rejects.toThrow(/not found/);
    await expect(store.revoke('nope', 't')).rejects.toThrow(/not an API key id/);
    const listed = await store.list();
    expect(listed.find((r) => r.id === record.id)?.revokedAt).toBe(now);
  });

  it('a verified key is remembered without its HMAC, but never past expiry, rotation or revocation', async () => {
    const { key, record } = await store.create({ name: 'remembered', roles: ['reader'], expiresAt: now + 10_000 }, 't');
    expect(store.authenticateCached(key)).toBeUndefined();
    expect(await store.authenticate(key)).toBeDefined();
    expect(store.authenticateCached(key)?.id).toBe(record.id);
    // A wrong secret for the same id is never remembered.
    const wrong = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    expect(await store.authenticate(wrong)).toBeUndefined();
    expect(store.authenticateCached(wrong)).toBeUndefined();

    const { key: second } = await store.rotate(record.id, 0, 't');
    expect(store.authenticateCached(key)).toBeUndefined();
    expect(await store.authenticate(key)).toBeUndefined();
    expect(await store.authenticate(second)).toBeDefined();
    expect(store.authenticateCached(second)?.id).toBe(record.id);
    now += 10_000;
    expect(store.authenticateCached(second)).toBeUndefined();
    now -= 10_000;
    expect(store.authenticateCached(second)?.id).toBe(record.id);
    await store.revoke(record.id, 't');
    expect(store.authenticateCached(second)).toBeUndefined();
    expect(await store.authenticate(second)).toBeUndefined();
  });

  it('a key rotated on another replica is accepted without waiting for the cache to expire', async () => {
    const replicaA = new ApiKeyStore(db, { pepper, cacheTtlMs: 60_000 });
    const replicaB = new ApiKeyStore(db, { pepper, cacheTtlMs: 60_000 });
    const { key: old, record } = await replicaA.create({ name: 'shared', roles: ['reader'] }, 't');
    expect(await replicaB.authenticate(old)).toBeDefined();
    const { key: fresh } = await replicaA.rotate(record.id, 0, 't');
    await new Promise((r) => setTimeout(r, 1100));
    expect(await replicaB.authenticate(fresh)).toBeDefined();
    // ...and, having re-read the key, no longer accepts the rotated-out secret.
    expect(await replicaB.authenticate(old)).toBeUndefined();
  });
});
