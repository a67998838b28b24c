// The admin REST API over a real socket, on SQLite and on PostgreSQL: registering, reading,
// aliases, stages, profiles and deletion; racing promotions; refusals while serving; and a
// registry that is locked or unreachable while serving goes on.
import Database from 'better-sqlite3';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { EXAMPLES } from '../../support/paths.js';
import { startPostgres, type PostgresServer } from '../../support/postgres.js';
import { freePort, makeRepository, startInProcess } from '../../support/server.js';

import { request, sha256 } from '../../support/http.js';
import { BC_ONNX, BC_TRAIN, DIGITS_ONNX, TEXT_ONNX } from '../../support/models.js';
const BC_CONFIG = { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }], warmup: [{ inputs: { features: 'random' } }] };
const BC_REQUEST = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(30).fill(1) }] };



async function until<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Store {
  kind: 'sqlite' | 'postgres';
  /** A registry URL and artifact home for one server. */
  make(): Promise<{ url: string; home: string }>;
  stop(): Promise<void>;
}

let pg: PostgresServer | undefined;
let databases = 0;
const STORES: Store[] = [
  {
    kind: 'sqlite',
    async make() {
      const home = await mkdtemp(join(tmpdir(), 'inferd-admin-'));
      return { url: `sqlite:${join(home, 'registry.db')}`, home };
    },
    async stop() {},
  },
  {
    kind: 'postgres',
    async make() {
      pg ??= await startPostgres();
      const home = await mkdtemp(join(tmpdir(), 'inferd-admin-'));
      return { url: await pg.createDatabase(`admin_${++databases}`), home };
    },
    async stop() {
      await pg?.stop();
    },
  },
];

describe.each(STORES)('admin API on $kind', (store) => {
  let server: InferdServer;
  let url: string;
  let home: string;

  beforeAll(async () => {
    const made = await store.make();
    home = made.home;
    ({ server, url } = await startInProcess(await makeRepository({}), {
      registry: made.url,
      registry_options: { home },
      // Served from the registry before anything is registered: it loads once promoted.
      models: [{ registry: 'breast_cancer@champion', config: BC_CONFIG }],
      model_control: { mode: 'poll', poll_interval_ms: 200 },
    }));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await store.stop();
    await rm(home, { recursive: true, force: true });
  });

  it('describes the registry and starts empty', async () => {
    const info = await request(url, 'GET', '/v2/admin/registry');
    expect(info.body).toMatchObject({ kind: store.kind, reachable: true, last_event_id: 0 });
    expect(await request(url, 'GET', '/v2/admin/registry/models')).toEqual({ status: 200, body: { models: [] } });
    expect((await request(url, 'GET', '/v2/admin/registry/models/breast_cancer')).status).toBe(404);
  });

  it('registers versions from server paths with lineage, and refuses a twin', async () => {
    const r = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', {
      path: BC_ONNX,
      description: 'MLP on the Wisconsin data',
      tags: { team: 'oncology' },
      source: 'git@example.org/bc.git',
      run_id: 'run-7',
      metrics: { accuracy: 0.979 },
      training_data: BC_TRAIN,
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      name: 'breast_cancer',
      version: 1,
      semver: '1.0.0',
      stage: 'None',
      serving: false,
      artifact: { sha256: await sha256(BC_ONNX), size: (await stat(BC_ONNX)).size },
      lineage: { source: 'git@example.org/bc.git', runId: 'run-7', metrics: { accuracy: 0.979 }, trainingData: { sha256: await sha256(BC_TRAIN) } },
      signature: { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }] },
    });
    const twin = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { path: BC_ONNX });
    expect(twin.status).toBe(409);
    expect(twin.body.error).toMatch(/version 1/);
    const missing = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { path: '/nonexistent/model.onnx' });
    expect(missing).toMatchObject({ status: 400, body: { error: expect.stringMatching(/cannot read model file \/nonexistent\/model.onnx/) } });
    const badBody = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { file: BC_ONNX });
    expect(badBody.status).toBe(400);
    expect(badBody.body.error).toMatch(/unknown key 'file'.*missing key 'path'|missing key 'path'.*unknown key 'file'/);
    // Same file under another model is fine; other files make versions 2 and 3.
    expect((await request(url, 'POST', '/v2/admin/registry/models/copy/versions', { path: BC_ONNX })).status).toBe(201);
    expect((await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { path: DIGITS_ONNX })).body.version).toBe(2);
    expect((await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { path: TEXT_ONNX })).body.version).toBe(3);
  });

  it('moves aliases with compare-and-set, and the serving model follows', async () => {
    const set = await request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/champion', { version: 1, expected: null });
    expect(set).toEqual({ status: 200, body: { name: 'breast_cancer', alias: 'champion', version: 1, previous: null } });
    // Poll mode: the server loads what the alias now names.
    await until(async () => ((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).status === 200 ? true : undefined), 'breast_cancer@champion to serve');
    const stale = await request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/champion', { version: 2, expected: 3 });
    expect(stale.status).toBe(409);
    expect(stale.body).toMatchObject({ current: 1, error: expect.stringMatching(/expected/) });
    expect((await request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/Production', { version: 1 })).status).toBe(400);
    expect((await request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/challenger', { version: 9 })).status).toBe(404);
  });

  it('lets exactly one of two racing promotions win, and tells both callers', async () => {
    expect((await request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/candidate', { version: 1 })).status).toBe(200);
    const [a, b] = await Promise.all([
      request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/candidate', { version: 2, expected: 1 }),
      request(url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/candidate', { version: 3, expected: 1 }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const winner = a.status === 200 ? a : b;
    const loser = a.status === 200 ? b : a;
    expect(loser.body.current).toBe(winner.body.version);
    const model = await request(url, 'GET', '/v2/admin/registry/models/breast_cancer');
    expect(model.body.aliases.candidate).toBe(winner.body.version);

    // Stages: the same race on `name@Production`.
    const first = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions/1/stage', { stage: 'Production' });
    expect(first.body.error).toBeUndefined();
    expect(first.body).toMatchObject({ version: 1, stage: 'Production', previousStage: 'None' });
    const [s2, s3] = await Promise.all([
      request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions/2/stage', { stage: 'production', archive_existing_versions: true, expected: 1 }),
      request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions/3/stage', { stage: 'Production', archive_existing_versions: true, expected: 1 }),
    ]);
    expect([s2.status, s3.status].sort()).toEqual([200, 409]);
    const won = s2.status === 200 ? s2 : s3;
    expect(won.body).toMatchObject({ stage: 'Production', archived: [1] });
    expect((s2.status === 200 ? s3 : s2).body.current).toBe(won.body.version);
  });

  it('shows versions with aliases, stages, checksums, lineage and what serves', async () => {
    const model = await request(url, 'GET', '/v2/admin/registry/models/breast_cancer');
    expect(model.status).toBe(200);
    expect(model.body).toMatchObject({ name: 'breast_cancer', versionCount: 3, latestVersion: 3, served_as: [{ name: 'breast_cancer', reference: 'breast_cancer@champion' }] });
    const v1 = model.body.versions.find((v: { version: number }) => v.version === 1);
    expect(v1).toMatchObject({ aliases: ['champion'], stage: 'Archived', serving: true, artifact: { sha256: await sha256(BC_ONNX) }, lineage: { runId: 'run-7' } });
    expect(model.body.versions.filter((v: { serving: boolean }) => v.serving).map((v: { version: number }) => v.version)).toEqual([1]);
    const one = await request(url, 'GET', '/v2/admin/registry/models/breast_cancer/versions/1');
    expect(one.body).toMatchObject({ version: 1, serving: true, profile: null });
    expect((await request(url, 'GET', '/v2/admin/registry/models/breast_cancer/versions/x')).status).toBe(400);
    expect((await request(url, 'GET', '/v2/admin/registry/models/breast_cancer/versions/42')).status).toBe(404);
  });

  it('stores an input profile from a reference CSV', async () => {
    const r = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions/1/profile', { reference: BC_TRAIN, exclude: ['label'] });
    expect(r.status).toBe(200);
    expect(r.body.features).toHaveLength(30);
    expect(r.body.features[0]).toMatchObject({ name: 'mean_radius', min: 6.981, max: 27.42 });
    expect((await request(url, 'GET', '/v2/admin/registry/models/breast_cancer/versions/1')).body.profile.rows).toBe(426);
    const wrong = await request(url, 'POST', '/v2/admin/registry/models/breast_cancer/versions/1/profile', { reference: BC_TRAIN });
    expect(wrong.status).toBe(400);
    expect(wrong.body.error).toMatch(/exclude the label column/);
  });

  it('refuses to delete a serving version (409) and guarded ones without force', async () => {
    const serving = await request(url, 'DELETE', '/v2/admin/registry/models/breast_cancer/versions/1');
    expect(serving.status).toBe(409);
    expect(serving.body.error).toBe("model 'breast_cancer' version 1 is serving; unload before deleting");
    const production = await request(url, 'GET', '/v2/admin/registry/models/breast_cancer');
    const prodVersion = production.body.productionVersion as number;
    const guarded = await request(url, 'DELETE', `/v2/admin/registry/models/breast_cancer/versions/${prodVersion}`);
    expect(guarded.status).toBe(409);
    expect(guarded.body.error).toMatch(/Production|alias/);
    const forced = await request(url, 'DELETE', `/v2/admin/registry/models/breast_cancer/versions/${prodVersion}?force=true`);
    expect(forced).toEqual({ status: 200, body: { deleted: { name: 'breast_cancer', version: prodVersion } } });
    expect((await request(url, 'GET', `/v2/admin/registry/models/breast_cancer/versions/${prodVersion}`)).status).toBe(404);
    // Still serving version 1 throughout.
    expect((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).body.model_version).toBe('1');
  });

  it('deletes and re-targets aliases; the events record every change', async () => {
    const stale = await request(url, 'DELETE', '/v2/admin/registry/models/breast_cancer/aliases/champion', { expected: 2 });
    expect(stale).toMatchObject({ status: 409, body: { current: 1 } });
    const deleted = await request(url, 'DELETE', '/v2/admin/registry/models/copy/aliases/none_yet');
    expect(deleted.status).toBe(404);
    const events = await request(url, 'GET', '/v2/admin/registry/events?model=breast_cancer');
    const actions = (events.body.events as Array<{ action: string }>).map((e) => e.action);
    expect(actions).toContain('version.registered');
    expect(actions).toContain('alias.set');
    expect(actions).toContain('stage.transitioned');
    expect(actions).toContain('profile.set');
    expect(actions).toContain('version.deleted');
    expect((await request(url, 'GET', '/v2/admin/registry/events?since=-1')).status).toBe(400);
  });
});

describe('admin API faults', () => {
  it('a locked SQLite registry gives 503 naming the lock, while inference goes on', async () => {
    const home = await mkdtemp(join(tmpdir(), 'inferd-admin-lock-'));
    const file = join(home, 'registry.db');
    const repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
    const { server, url } = await startInProcess(repo, { registry: `sqlite:${file}`, registry_options: { home, busy_timeout_ms: 300 } });
    try {
      expect((await request(url, 'POST', '/v2/admin/registry/models/bc/versions', { path: BC_ONNX })).status).toBe(201);
      const blocker = new Database(file);
      blocker.exec('BEGIN EXCLUSIVE');
      try {
        const locked = await request(url, 'PUT', '/v2/admin/registry/models/bc/aliases/champion', { version: 1 });
        expect(locked.status).toBe(503);
        expect(locked.body.error).toContain(`registry store sqlite:${file} is locked by another connection`);
        expect((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).status).toBe(200);
        expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
      } finally {
        blocker.exec('COMMIT');
        blocker.close();
      }
      expect((await request(url, 'PUT', '/v2/admin/registry/models/bc/aliases/champion', { version: 1 })).status).toBe(200);
    } finally {
      await server.shutdown(5000);
      await rm(home, { recursive: true, force: true });
    }
  });

  it('an unreachable PostgreSQL registry gives 503 on the admin API; the server starts and serves what it can', async () => {
    const home = await mkdtemp(join(tmpdir(), 'inferd-admin-down-'));
    const port = await freePort();
    const repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
    const { server, url } = await startInProcess(repo, {
      registry: `postgres://inferd:secret@127.0.0.1:${port}/registry`,
      registry_options: { home, connect_timeout_ms: 500 },
      models: [{ registry: 'fraud@champion', config: BC_CONFIG }],
    });
    try {
      expect((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).status).toBe(200);
      const admin = await request(url, 'GET', '/v2/admin/registry/models');
      expect(admin.status).toBe(503);
      expect(admin.body.error).toMatch(new RegExp(`registry store postgres://inferd:\\*\\*\\*@127.0.0.1:${port}/registry is unreachable`));
      expect(admin.body.error).not.toContain('secret');
      const index = await request(url, 'POST', '/v2/repository/index', {});
      expect(index.body).toContainEqual({ name: 'fraud', state: 'UNAVAILABLE', reason: expect.stringMatching(/unreachable/) });
      expect(index.body).toContainEqual({ name: 'breast_cancer', version: '1', state: 'READY' });
      // The registry model is eager and failed: the server is not ready, and says why.
      const ready = await request(url, 'GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.failures).toEqual([{ name: 'fraud', reason: expect.stringMatching(/unreachable/) }]);
    } finally {
      await server.shutdown(5000);
      await rm(home, { recursive: true, force: true });
    }
  });

  it('without a registry, the registry routes say none is configured; serving status still answers', async () => {
    const repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
    const { server, url } = await startInProcess(repo);
    try {
      const r = await request(url, 'GET', '/v2/admin/registry/models');
      expect(r).toEqual({ status: 404, body: { error: expect.stringMatching(/no model registry is configured/) } });
      const status = await request(url, 'GET', '/v2/admin/models');
      expect(status.body.models).toEqual([
        expect.objectContaining({ name: 'breast_cancer', source: { kind: 'repository', path: join(repo, 'breast_cancer') }, load: 'eager', state: 'READY', loads: 1 }),
      ]);
      expect((await request(url, 'GET', '/v2/admin/models/nope')).status).toBe(404);
    } finally {
      await server.shutdown(5000);
    }
  });
});
