// Serving models from the registry: names and versions as clients see them, hot swaps under
// continuous load when an alias or stage moves (polled, or by an explicit load), and swaps
// that fail (corrupted artifact, a version the serving config does not fit) leaving the old
// version serving with the failure visible.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { startInProcess } from '../support/server.js';
import {
  BC_ONNX,
  BC_REQUEST,
  BC_SERVING_CONFIG,
  DIGITS_ONNX,
  continuousLoad,
  corrupt,
  postgresRegistry,
  request,
  retrained,
  servedVersion,
  sqliteRegistry,
  until,
  type TempRegistry,
} from './support.js';

async function emptyRepository(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'inferd-empty-repo-'));
}

function serverConfig(reg: TempRegistry, reference: string, mode: 'none' | 'poll', extra: Record<string, unknown> = {}) {
  return {
    registry: reg.url,
    registry_options: { home: reg.home },
    models: [{ registry: reference, config: BC_SERVING_CONFIG }],
    model_control: { mode, poll_interval_ms: 100 },
    shutdown: { deadline_ms: 5000 },
    ...extra,
  };
}

describe('serving from a SQLite registry', () => {
  let reg: TempRegistry;
  let server: InferdServer;
  let url: string;
  let v3sha: string;

  beforeAll(async () => {
    reg = await sqliteRegistry();
    await reg.registry.register('breast_cancer', BC_ONNX, { description: 'first' });
    await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v2.onnx'), 'retrained 2'));
    v3sha = (await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v3.onnx'), 'retrained 3'))).artifact.sha256;
    // Same model name, other signature: registrable, but the serving config does not fit it.
    await reg.registry.register('breast_cancer', DIGITS_ONNX);
    await reg.registry.setAlias('breast_cancer', 'champion', 1);
    ({ server, url } = await startInProcess(await emptyRepository(), serverConfig(reg, 'breast_cancer@champion', 'poll')));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
  });

  it('appears under its registered name with the registry version number as its OIP version', async () => {
    const meta = await request(url, 'GET', '/v2/models/breast_cancer');
    expect(meta.status).toBe(200);
    expect(meta.body).toMatchObject({ name: 'breast_cancer', versions: ['1'], platform: 'onnxruntime_onnx' });
    const r = await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST);
    expect(r.status).toBe(200);
    expect(r.body.model_version).toBe('1');
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toEqual([{ name: 'breast_cancer', version: '1', state: 'READY' }]);
  });

  it('swaps to the version an alias moves to, under continuous load, with no failed request', async () => {
    const load = continuousLoad(url, 'breast_cancer', 16);
    await until(() => (load.result.ok > 100 ? true : undefined), 'traffic before the move');
    await reg.registry.setAlias('breast_cancer', 'champion', 2);
    await until(async () => ((await servedVersion(url, 'breast_cancer')) === '2' ? true : undefined), 'version 2 serving');
    const after = load.result.ok;
    await until(() => (load.result.ok > after + 100 ? true : undefined), 'traffic after the move');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.wrong).toBe(0);
    expect(result.versions.get('1')).toBeGreaterThan(0);
    expect(result.versions.get('2')).toBeGreaterThan(100);
    // The old version was drained and unloaded.
    expect(server.manager.serving.versionsOf('breast_cancer').map((v) => v.version)).toEqual(['2']);
    const status = await request(url, 'GET', '/v2/admin/models/breast_cancer');
    expect(status.body).toMatchObject({ source: { kind: 'registry', reference: 'breast_cancer@champion' }, state: 'READY', last_swap: { from: '1', to: '2' } });
  });

  it('refuses a corrupted artifact: the serving version keeps serving and the failure shows in the index and the admin API', async () => {
    await corrupt(reg.registry, v3sha);
    const load = continuousLoad(url, 'breast_cancer', 8);
    await until(() => (load.result.ok > 50 ? true : undefined), 'traffic before the move');
    await reg.registry.setAlias('breast_cancer', 'champion', 3);
    const row = await until(async () => {
      const index = await request(url, 'POST', '/v2/repository/index', {});
      return (index.body as Array<{ version?: string; reason?: string }>).find((e) => e.version === '3');
    }, 'the failure of version 3 in the index');
    expect(row).toMatchObject({ name: 'breast_cancer', version: '3', state: 'UNAVAILABLE', reason: expect.stringMatching(/corrupted.*sha256/) });
    const after = load.result.ok;
    await until(() => (load.result.ok > after + 50 ? true : undefined), 'traffic after the failed move');
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect([...result.versions.keys()]).toEqual(['2']);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toContainEqual({ name: 'breast_cancer', version: '2', state: 'READY' });
    const status = await request(url, 'GET', '/v2/admin/models/breast_cancer');
    expect(status.body.failure).toMatchObject({ versions: ['3'], reason: expect.stringMatching(/corrupted/) });
    expect(status.body.versions.map((v: { version: string }) => v.version)).toEqual(['2']);
    // The server stays ready: the model serves.
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
  });

  it('refuses a version the serving config does not fit, by explicit load too, and recovers when the alias moves back', async () => {
    await reg.registry.setAlias('breast_cancer', 'champion', 4);
    const load = await request(url, 'POST', '/v2/repository/models/breast_cancer/load', {});
    expect(load.status).toBeGreaterThanOrEqual(400);
    expect(load.body.error).toMatch(/features/);
    expect(await servedVersion(url, 'breast_cancer')).toBe('2');
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toContainEqual({ name: 'breast_cancer', version: '4', state: 'UNAVAILABLE', reason: expect.stringMatching(/features/) });
    await reg.registry.setAlias('breast_cancer', 'champion', 2);
    await until(async () => {
      const s = await request(url, 'GET', '/v2/admin/models/breast_cancer');
      return s.body.failure === undefined ? true : undefined;
    }, 'the failure to clear');
    expect(await servedVersion(url, 'breast_cancer')).toBe('2');
    expect(server.manager.serving.versionsOf('breast_cancer').map((v) => v.version)).toEqual(['2']);
  });
});

describe('explicit load swaps when the poller is off', () => {
  let reg: TempRegistry;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    reg = await sqliteRegistry();
    await reg.registry.register('breast_cancer', BC_ONNX);
    await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v2.onnx'), 'retrained 2'));
    await reg.registry.transitionStage('breast_cancer', 1, 'Production');
    ({ server, url } = await startInProcess(await emptyRepository(), serverConfig(reg, 'breast_cancer@Production', 'none')));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
  });

  it('keeps the version until POST .../load, which returns once the new version serves', async () => {
    const load = continuousLoad(url, 'breast_cancer', 16);
    await until(() => (load.result.ok > 100 ? true : undefined), 'traffic before the move');
    await reg.registry.transitionStage('breast_cancer', 2, 'Production', { archiveExistingVersions: true });
    // Mode none watches nothing: the stage move alone changes nothing.
    expect(await servedVersion(url, 'breast_cancer')).toBe('1');
    const swap = await request(url, 'POST', '/v2/repository/models/breast_cancer/load', {});
    expect(swap.status).toBe(200);
    expect(await servedVersion(url, 'breast_cancer')).toBe('2');
    const after = load.result.ok;
    await until(() => (load.result.ok > after + 100 ? true : undefined), 'traffic after the swap');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.wrong).toBe(0);
    expect(result.versions.get('1')).toBeGreaterThan(0);
    expect(result.versions.get('2')).toBeGreaterThan(0);
  });
});

describe('serving from a PostgreSQL registry', () => {
  let pg: PostgresServer;
  let reg: TempRegistry;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    pg = await startPostgres();
    reg = await postgresRegistry((name) => pg.createDatabase(name), 'serving');
    await reg.registry.register('breast_cancer', BC_ONNX);
    await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v2.onnx'), 'retrained 2'));
    await reg.registry.transitionStage('breast_cancer', 1, 'Production');
    ({ server, url } = await startInProcess(
      await emptyRepository(),
      serverConfig(reg, 'breast_cancer@Production', 'poll', { registry_options: { home: reg.home, connect_timeout_ms: 1000 } }),
    ));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
    await pg?.stop();
  });

  it('follows a stage transition under load with no failed request', async () => {
    expect(await servedVersion(url, 'breast_cancer')).toBe('1');
    const load = continuousLoad(url, 'breast_cancer', 16);
    await until(() => (load.result.ok > 100 ? true : undefined), 'traffic before the move');
    await reg.registry.transitionStage('breast_cancer', 2, 'Production', { archiveExistingVersions: true });
    await until(async () => ((await servedVersion(url, 'breast_cancer')) === '2' ? true : undefined), 'version 2 serving');
    const after = load.result.ok;
    await until(() => (load.result.ok > after + 100 ? true : undefined), 'traffic after the move');
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
    expect(result.wrong).toBe(0);
    expect(result.versions.get('2')).toBeGreaterThan(0);
  });

  it('keeps serving when the database goes away, and says so on the admin API', async () => {
    await reg.registry.close();
    await pg.stop();
    const load = continuousLoad(url, 'breast_cancer', 4);
    await until(() => (load.result.ok > 50 ? true : undefined), 'traffic with the registry down');
    const admin = await request(url, 'GET', '/v2/admin/registry/models');
    expect(admin.status).toBe(503);
    expect(admin.body.error).toMatch(/registry store postgres:\/\/.*is unreachable|cannot answer/);
    // An explicit reload cannot reach the registry: refused, and the version keeps serving.
    const reload = await request(url, 'POST', '/v2/repository/models/breast_cancer/load', {});
    expect(reload.status).toBe(503);
    const result = await load.stop();
    expect(result.failed).toBe(0);
    expect([...result.versions.keys()]).toEqual(['2']);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toEqual([{ name: 'breast_cancer', version: '2', state: 'READY', reason: expect.stringMatching(/unreachable.*keeps serving/) }]);
    const state = await request(url, 'GET', '/v2/admin/registry');
    expect(state.body).toMatchObject({ reachable: false, reason: expect.stringMatching(/unreachable/) });
  });
});
