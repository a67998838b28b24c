/**
 * Failure modes that depend on the store: locks, outages, foreign schema versions, and races
 * between separate processes.
 */
import Database from 'better-sqlite3';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/registry/open.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { BACKENDS, BREAST_CANCER, DIGITS, TEXT_ENCODER, repoRoot, sqliteBackend } from './fixtures.js';
import { failure } from '../support/http.js';

const run = promisify(execFile);


describe('sqlite store faults', () => {
  it('reports a database locked by another connection as UNAVAILABLE without freezing the event loop', async () => {
    const fx = await sqliteBackend().fixture();
    const file = path.join(fx.dir, 'registry.db');
    try {
      const registry = await fx.open({ busyTimeoutMs: 300 });
      await registry.register('bc', BREAST_CANCER);
      const blocker = new Database(file);
      blocker.exec('BEGIN EXCLUSIVE');
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const started = Date.now();
      const err = await failure(registry.setAlias('bc', 'champion', 1));
      const waited = Date.now() - started;
      clearInterval(timer);
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toContain(`registry store sqlite:${file} is locked by another connection`);
      // busy_timeout is 250 ms; Date.now() and SQLite's own sleep differ by a few milliseconds.
      expect(waited).toBeGreaterThanOrEqual(240);
      expect(ticks).toBeGreaterThan(5);
      // WAL: readers are not blocked by a writer.
      expect((await registry.resolve('bc')).version).toBe(1);
      // A second registry on the same file cannot even migrate while the lock is held.
      expect((await failure(openRegistry(fx.url, { home: fx.home, busyTimeoutMs: 50 }))).code).toBe('UNAVAILABLE');
      blocker.exec('COMMIT');
      blocker.close();
      expect((await registry.setAlias('bc', 'champion', 1)).version).toBe(1);
    } finally {
      await fx.cleanup();
    }
  });

  it('waits for a lock released within the busy timeout', async () => {
    const fx = await sqliteBackend().fixture();
    try {
      const registry = await fx.open({ busyTimeoutMs: 5000 });
      await registry.register('bc', BREAST_CANCER);
      const blocker = new Database(path.join(fx.dir, 'registry.db'));
      blocker.exec('BEGIN EXCLUSIVE');
      setTimeout(() => blocker.exec('COMMIT'), 200);
      expect((await registry.setAlias('bc', 'champion', 1)).version).toBe(1);
      blocker.close();
    } finally {
      await fx.cleanup();
    }
  });

  it('refuses a file that is not a SQLite database', async () => {
    const fx = await sqliteBackend().fixture();
    try {
      const file = path.join(fx.dir, 'registry.db');
      await writeFile(file, 'this is not a database, just some text that is long enough to have a header'.repeat(20));
      const err = await failure(openRegistry(fx.url, { home: fx.home }));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.message).toContain(`registry store sqlite:${file}`);
    } finally {
      await fx.cleanup();
    }
  });

  it('refuses a schema newer than it knows', async () => {
    const fx = await sqliteBackend().fixture();
    try {
      await (await fx.open()).close();
      const db = new Database(path.join(fx.dir, 'registry.db'));
      db.exec('UPDATE schema_version SET version = 99');
      db.close();
      const err = await failure(openRegistry(fx.url, { home: fx.home }));
      expect(err.code).toBe('FAILED_PRECONDITION');
      expect(err.message).toContain('schema version 99');
    } finally {
      await fx.cleanup();
    }
  });
});

describe('postgres store faults', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres();
  });
  afterAll(() => server.stop());

  it('refuses a schema newer than it knows', async () => {
    const url = await server.createDatabase('newer_schema');
    await (await openRegistry(url, { home: '/nonexistent' })).close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('UPDATE schema_version SET version = 99');
    await client.end();
    const err = await failure(openRegistry(url, { home: '/nonexistent' }));
    expect(err.code).toBe('FAILED_PRECONDITION');
    expect(err.message).toContain('schema version 99');
  });

  it('reports a stopped server as UNAVAILABLE, naming the store, and does not crash', async () => {
    const own = await startPostgres();
    const fx = await sqliteBackend().fixture();
    try {
      const registry = await openRegistry(own.url, { home: fx.home, connectTimeoutMs: 2000 });
      await registry.register('bc', BREAST_CANCER);
      await own.stop();
      for (const attempt of [registry.setAlias('bc', 'champion', 1), registry.resolve('bc'), registry.listModels()]) {
        const err = await failure(attempt);
        expect(err.code).toBe('UNAVAILABLE');
        expect(err.message).toContain(`registry store postgres://postgres@127.0.0.1:${own.port}/postgres`);
        expect(err.message).toContain('unreachable');
      }
      const never = await failure(openRegistry(own.url, { home: fx.home, connectTimeoutMs: 2000 }));
      expect(never.code).toBe('UNAVAILABLE');
      expect(never.message).toContain('ECONNREFUSED');
      await registry.close();
    } finally {
      await own.stop();
      await fx.cleanup();
    }
  });

  it('reports wrong credentials or a missing database as UNAVAILABLE', async () => {
    const missing = `postgres://postgres@127.0.0.1:${server.port}/no_such_db`;
    const err = await failure(openRegistry(missing, { home: '/nonexistent' }));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toContain('no_such_db');
  });

  it('hides the password in messages', async () => {
    const url = `postgres://postgres:s3cret@127.0.0.1:1/x`;
    const err = await failure(openRegistry(url, { home: '/nonexistent', connectTimeoutMs: 1000 }));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).not.toContain('s3cret');
    expect(err.message).toContain('postgres://postgres:***@127.0.0.1:1/x');
  });
});

describe.each(BACKENDS)('cross-process promotion race on $kind', (backend) => {
  beforeAll(() => backend.start());
  afterAll(() => backend.stop());

  it('exactly one of two processes moves the alias; the other learns where it went', async () => {
    const fx = await backend.fixture();
    try {
      const registry = await fx.open();
      await registry.register('bc', BREAST_CANCER);
      await registry.register('bc', DIGITS);
      await registry.register('bc', TEXT_ENCODER);
      await registry.setAlias('bc', 'champion', 1);
      const worker = path.join(repoRoot, 'test', 'registry', 'race-worker.ts');
      const start = String(Date.now() + 2500);
      const outcomes = await Promise.all(
        ['2', '3'].map(async (version) => {
          const { stdout } = await run(process.execPath, ['--import', 'tsx', worker, fx.url, fx.home, start, 'bc', 'champion', '1', version], {
            cwd: repoRoot,
          });
          return JSON.parse(stdout) as { won: boolean; current?: number; message?: string };
        }),
      );
      const winners = outcomes.filter((o) => o.won);
      const losers = outcomes.filter((o) => !o.won);
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      const now = (await registry.resolve('bc@champion')).version;
      expect(losers[0]!.current).toBe(now);
      expect(losers[0]!.message).toContain(`points to version ${now}`);
    } finally {
      await fx.cleanup();
    }
  });
});
