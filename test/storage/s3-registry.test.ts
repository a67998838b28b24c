// A registry shared by replicas: PostgreSQL for the records, a real S3-compatible store
// (SeaweedFS) for the artifacts, two server processes with separate local caches. A version
// registered through one is served by the other; the same content is uploaded once; an object
// damaged in the store is refused by the replica that downloads it, which keeps serving.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { configureStorage } from '../../src/storage/open.js';
import { BC_ONNX, BC_REQUEST, BC_SERVING_CONFIG, continuousLoad, request, retrained, servedVersion, until } from '../models/support.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { startS3, type S3Server } from '../support/s3.js';
import { startChild, type ChildServer } from '../support/server.js';
import { filesUnder, settingsFor } from './support.js';
import { readFile } from 'node:fs/promises';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { S3ArtifactStore } from '../../src/storage/s3-artifacts.js';
import { createS3Client } from '../../src/storage/s3-client.js';
import { SHARED_MODELS } from '../support/paths.js';
import { createHash } from 'node:crypto';

let pg: PostgresServer;
let s3: S3Server;
let registry: Registry;
let a: ChildServer;
let b: ChildServer;
let cacheA: string;
let cacheB: string;
let work: string;

async function replica(cache: string, pgUrl: string): Promise<ChildServer> {
  const file = join(work, `config-${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(
    file,
    YAML.stringify({
      registry: pgUrl,
      registry_options: { artifacts: 's3://registry/artifacts' },
      models: [{ registry: 'breast_cancer@champion', config: BC_SERVING_CONFIG }],
      model_control: { mode: 'poll', poll_interval_ms: 200 },
      storage: { cache_dir: cache, s3: { max_attempts: 2 } },
      shutdown: { deadline_ms: 5000 },
    }),
  );
  const empty = await mkdtemp(join(tmpdir(), 'inferd-empty-repo-'));
  return startChild(['--config', file, '--model-repository', empty], s3.env);
}

beforeAll(async () => {
  [pg, s3] = await Promise.all([startPostgres(), startS3()]);
  await s3.createBucket('registry');
  work = await mkdtemp(join(tmpdir(), 'inferd-shared-registry-'));
  const pgUrl = await pg.createDatabase('shared_registry');
  const settings = await settingsFor(s3);
  configureStorage(settings);
  registry = await openRegistry(pgUrl, { home: work, artifactsAt: 's3://registry/artifacts', actor: 'tester' });
  await registry.register('breast_cancer', BC_ONNX, { description: 'first' });
  await registry.setAlias('breast_cancer', 'champion', 1);
  cacheA = await mkdtemp(join(tmpdir(), 'inferd-cache-a-'));
  cacheB = await mkdtemp(join(tmpdir(), 'inferd-cache-b-'));
  [a, b] = await Promise.all([replica(cacheA, pgUrl), replica(cacheB, pgUrl)]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await registry?.close();
  await s3?.destroy();
  await pg?.stop();
});

describe('two replicas, one PostgreSQL registry, artifacts in s3://registry/artifacts', () => {
  it('both serve version 1, each from its own cache, downloaded from the store', async () => {
    for (const s of [a, b]) expect(await servedVersion(s.url, 'breast_cancer')).toBe('1');
    const sha = createHash('sha256').update(await readFile(BC_ONNX)).digest('hex');
    for (const cache of [cacheA, cacheB]) expect(await filesUnder(join(cache, 'artifacts'))).toEqual([`sha256/${sha.slice(0, 2)}/${sha}/model.onnx`]);
    expect(b.output()).toMatch(/"msg":"artifact downloaded"/);
  });

  it('a version registered through one replica is served by the other, with no failed request', async () => {
    const v2 = await retrained(BC_ONNX, join(work, 'v2.onnx'), 'retrained 2');
    const load = continuousLoad(b.url, 'breast_cancer', 8);
    await until(() => (load.result.ok > 50 ? true : undefined), 'traffic on B');
    const created = await request(a.url, 'POST', '/v2/admin/registry/models/breast_cancer/versions', { path: v2, description: 'second' });
    expect(created.status).toBe(201);
    expect(created.body.version).toBe(2);
    expect((await request(a.url, 'PUT', '/v2/admin/registry/models/breast_cancer/aliases/champion', { version: 2 })).status).toBe(200);
    await until(() => ((load.result.versions.get('2') ?? 0) > 50 ? true : undefined), 'B answering with version 2', 60_000);
    const result = await load.stop();
    expect(result.failed, result.errors.join('\n')).toBe(0);
    expect(result.wrong).toBe(0);
    expect(await servedVersion(a.url, 'breast_cancer')).toBe('2');
    expect(a.output()).toMatch(/"msg":"artifact uploaded"/);
  });

  it('the same content registered again is not uploaded again', async () => {
    const v2 = join(work, 'v2.onnx');
    const sha = createHash('sha256').update(await readFile(v2)).digest('hex');
    const uploads = () => a.output().split('\n').filter((l) => l.includes('"msg":"artifact uploaded"') && l.includes(sha)).length;
    expect(uploads()).toBe(1);
    const copy = await request(a.url, 'POST', '/v2/admin/registry/models/breast_cancer_copy/versions', { path: v2 });
    expect(copy.status).toBe(201);
    expect(uploads()).toBe(1);
  });

  it('an artifact damaged in the store is refused by the replica that downloads it; it keeps serving', async () => {
    const v3 = await retrained(BC_ONNX, join(work, 'v3.onnx'), 'retrained 3');
    const version = await registry.register('breast_cancer', v3, { description: 'third' });
    const sha = version.artifact.sha256;
    const damaged = await readFile(v3);
    for (let i = 100; i < 132; i++) damaged[i] = damaged[i]! ^ 0xff;
    await s3.put('registry', `artifacts/sha256/${sha.slice(0, 2)}/${sha}/model.onnx`, damaged);
    await registry.setAlias('breast_cancer', 'champion', 3);
    await until(() => (b.output().includes('is corrupted') ? true : undefined), 'B refusing version 3', 60_000);
    const r = await request(b.url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST);
    expect(r.status).toBe(200);
    expect(r.body.model_version).toBe('2');
    const status = await request(b.url, 'GET', '/v2/admin/models/breast_cancer');
    expect(JSON.stringify(status.body)).toMatch(/corrupted/);
    expect((await filesUnder(join(cacheB, 'artifacts'))).filter((f) => f.includes(sha))).toEqual([]);
    expect(await filesUnder(join(cacheB, 'artifacts', 'tmp'))).toEqual([]);
  });
});

describe('large artifacts', () => {
  it('upload in multipart and download in ranged parts, byte for byte', async () => {
    const file = join(SHARED_MODELS, 'mobilenet_v2', '1', 'model.onnx');
    const bytes = await readFile(file);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const client = createS3Client({ endpoint: s3.endpoint, maxAttempts: 2 });
    const part = 5 * 1024 * 1024;
    const writer = new S3ArtifactStore('s3://registry/large', client, { cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')), partSize: part });
    const stored = await writer.ingest(file, async () => 'inspected');
    expect(stored).toMatchObject({ sha256: sha, size: bytes.length, inspected: 'inspected' });
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: 'registry', Key: `large/sha256/${sha.slice(0, 2)}/${sha}/model.onnx` }));
    expect(head.ETag).toMatch(/-3"$/); // three parts
    expect(head.Metadata).toEqual({ sha256: sha });
    const progress: number[] = [];
    const reader = new S3ArtifactStore('s3://registry/large', client, {
      cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')),
      partSize: part,
      onProgress: (_what, done) => progress.push(done),
    });
    const local = await reader.verify(sha, 'model mobilenet_v2 version 1');
    expect(createHash('sha256').update(await readFile(local)).digest('hex')).toBe(sha);
    expect(progress.at(-1)).toBe(bytes.length);
    // A second load reads the verified cache: no download.
    progress.length = 0;
    expect(await reader.verify(sha, 'model mobilenet_v2 version 1')).toBe(local);
    expect(progress).toEqual([]);
  });
});
