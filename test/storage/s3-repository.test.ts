// Serving a model repository from a real S3-compatible store (SeaweedFS on the loopback):
// golden parity, no second download after a restart, new versions picked up by polling under
// continuous load, and the faults: a corrupted object refused, an outage that leaves the cached
// models serving, an interrupted download that leaves no partial file.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import type { InferdServer } from '../../src/server/index.js';
import { prepareModelRepository, type PreparedRepository, type StorageSettings } from '../../src/storage/open.js';
import { RemoteRepository } from '../../src/storage/remote-repository.js';
import { createS3Client } from '../../src/storage/s3-client.js';
import { BC_REQUEST, BC_LABELS, continuousLoad, request, retrained, until } from '../models/support.js';
import { EXAMPLES, REPO_ROOT, SHARED_MODELS } from '../support/paths.js';
import { startS3, type S3Server } from '../support/s3.js';
import { freePort, startInProcess } from '../support/server.js';
import { filesUnder, logSink, settingsFor, type LogSink } from './support.js';
import { loadConfig } from '../../src/config/load.js';

const OIP: Record<string, string> = { float32: 'FP32', float64: 'FP64', int64: 'INT64', int32: 'INT32', bool: 'BOOL' };
type Golden = { inputs: Record<string, { shape: number[]; datatype: string; data: number[] }>; outputs: Record<string, { shape: number[]; datatype: string; data: number[] }> };
const MOBILENET_CONFIG = 'max_batch_size: 2\nonnx: { intra_op_threads: 2 }\nwarmup: []\n';

let s3: S3Server;

beforeAll(async () => {
  s3 = await startS3();
  await s3.createBucket('models');
  for (const m of ['breast_cancer', 'digits', 'text_encoder_tiny']) await s3.putTree('models', `prod/repo/${m}/`, join(EXAMPLES, m));
  await s3.put('models', 'prod/repo/mobilenet_v2/config.yaml', MOBILENET_CONFIG);
  await s3.put('models', 'prod/repo/mobilenet_v2/1/model.onnx', await readFile(join(SHARED_MODELS, 'mobilenet_v2', '1', 'model.onnx')));
});

afterAll(async () => {
  await s3?.destroy();
});

function worstError(actual: number[], expected: number[]): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  return worst;
}

async function serve(prepared: PreparedRepository, mode: 'none' | 'poll'): Promise<{ server: InferdServer; url: string }> {
  return startInProcess(prepared.config.model_repository, { model_control: { mode, poll_interval_ms: 200 }, shutdown: { deadline_ms: 5000 } });
}

describe('a repository in s3://models/prod/repo', () => {
  let log: LogSink;
  let settings: StorageSettings;
  let prepared: PreparedRepository;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    log = logSink();
    settings = await settingsFor(s3, log.logger);
    prepared = await prepareModelRepository(loadConfig({ env: {}, overrides: { model_repository: 's3://models/prod/repo' } }), settings);
    ({ server, url } = await serve(prepared, 'none'));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    prepared?.close();
  });

  it.each(['breast_cancer', 'digits', 'text_encoder_tiny'])('serves %s with its golden outputs to 1e-5', async (model) => {
    const golden = JSON.parse(await readFile(join(SHARED_MODELS, model, 'golden.json'), 'utf8')) as Golden;
    const inputs = Object.entries(golden.inputs).map(([name, t]) => ({ name, shape: t.shape, datatype: OIP[t.datatype] ?? t.datatype, data: t.data }));
    const r = await request(url, 'POST', `/v2/models/${model}/infer`, { inputs });
    expect(r.status).toBe(200);
    for (const [name, expected] of Object.entries(golden.outputs)) {
      const out = r.body.outputs.find((o: { name: string }) => o.name === name);
      expect(out.shape).toEqual(expected.shape);
      expect(worstError(out.data, expected.data)).toBeLessThanOrEqual(1e-5);
    }
  });

  it('serves mobilenet_v2 with its golden outputs to 1e-5', async () => {
    const input = new Float32Array((await readFile(join(SHARED_MODELS, 'mobilenet_v2', 'golden_input_2x3x224x224.f32'))).buffer.slice(0));
    const expected = new Float32Array((await readFile(join(SHARED_MODELS, 'mobilenet_v2', 'golden_output_2x1000.f32'))).buffer.slice(0));
    const r = await request(url, 'POST', '/v2/models/mobilenet_v2/infer', { inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 3, 224, 224], data: Array.from(input) }] });
    expect(r.status).toBe(200);
    expect(worstError(r.body.outputs[0].data, Array.from(expected))).toBeLessThanOrEqual(1e-5);
  });

  it('logs bytes and time per downloaded artifact, and the cached files hash as the originals', async () => {
    const lines = log.messages('artifact downloaded');
    const mobilenet = lines.find((l) => l['file'] === 'mobilenet_v2/1/model.onnx');
    const original = await readFile(join(SHARED_MODELS, 'mobilenet_v2', '1', 'model.onnx'));
    expect(mobilenet).toMatchObject({ bytes: original.length, sha256: createHash('sha256').update(original).digest('hex') });
    expect(typeof mobilenet!['ms']).toBe('number');
    // Four models, each a config.yaml and a model.onnx.
    expect(lines.map((l) => l['file']).sort()).toEqual(
      ['breast_cancer', 'digits', 'mobilenet_v2', 'text_encoder_tiny'].flatMap((m) => [`${m}/1/model.onnx`, `${m}/config.yaml`]).sort(),
    );
  });

  it('a restart with the same cache downloads nothing', async () => {
    const again = new RemoteRepository('s3://models/prod/repo', { cacheDir: settings.cacheDir, s3: settings.s3 });
    const report = await again.sync();
    expect(report.downloaded).toBe(0);
    expect(report.files).toBe(8);
    expect(again.localRoot).toBe(prepared.config.model_repository);
  });
});

describe('polling a bucket', () => {
  const prefix = 'prod/live/';
  let log: LogSink;
  let settings: StorageSettings;
  let prepared: PreparedRepository;
  let server: InferdServer;
  let url: string;
  let v2: Buffer;
  let v3: Buffer;

  beforeAll(async () => {
    await s3.putTree('models', `${prefix}breast_cancer/`, join(EXAMPLES, 'breast_cancer'));
    const dir = await mkdtemp(join(tmpdir(), 'inferd-versions-'));
    v2 = await readFile(await retrained(join(EXAMPLES, 'breast_cancer', '1', 'model.onnx'), join(dir, 'v2.onnx'), 'retrained 2'));
    v3 = await readFile(await retrained(join(EXAMPLES, 'breast_cancer', '1', 'model.onnx'), join(dir, 'v3.onnx'), 'retrained 3'));
    log = logSink();
    settings = await settingsFor(s3, log.logger);
    prepared = await prepareModelRepository(loadConfig({ env: {}, overrides: { model_repository: `s3://models/${prefix}` } }), settings);
    ({ server, url } = await serve(prepared, 'poll'));
  });

  afterAll(async () => {
    if (process.env['DEBUG_S3']) console.log(JSON.stringify(log.lines.filter((l) => l['msg'] !== 'request completed').slice(-40), null, 1));
    await server?.shutdown(5000);
    prepared?.close();
  });

  it('picks up a new version uploaded to the bucket, with no failed request under continuous load', async () => {
    const load = continuousLoad(url, 'breast_cancer', 8);
    await until(() => (load.result.ok > 50 ? true : undefined), 'traffic on version 1');
    await s3.put('models', `${prefix}breast_cancer/2/model.onnx`, v2);
    await until(() => ((load.result.versions.get('2') ?? 0) > 50 ? true : undefined), 'answers from version 2', 60_000);
    const result = await load.stop();
    expect(result.failed, result.errors.join('\n')).toBe(0);
    expect(result.wrong).toBe(0);
    expect(result.versions.get('1')).toBeGreaterThan(0);
    expect(await filesUnder(prepared.config.model_repository)).toEqual(['breast_cancer/1/model.onnx', 'breast_cancer/2/model.onnx', 'breast_cancer/config.yaml']);
  });

  it('refuses an object whose bytes do not match its checksum; the serving version keeps serving', async () => {
    const corrupted = Buffer.from(v3);
    for (let i = 100; i < 132; i++) corrupted[i] = corrupted[i]! ^ 0xff;
    // The uploader declared the hash of the real file; the stored bytes are damaged.
    await s3.put('models', `${prefix}breast_cancer/3/model.onnx`, corrupted, { sha256: createHash('sha256').update(v3).digest('hex') });
    const refused = await until(() => log.messages('remote artifact refused').find((l) => l['file'] === 'breast_cancer/3/model.onnx'), 'the refusal');
    expect(String(refused['reason'])).toMatch(/corrupted.*sha256/);
    const r = await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST);
    expect(r.status).toBe(200);
    expect(r.body.model_version).toBe('2');
    expect(await filesUnder(prepared.config.model_repository)).toEqual(['breast_cancer/1/model.onnx', 'breast_cancer/2/model.onnx', 'breast_cancer/config.yaml']);
    expect(await filesUnder(join(settings.cacheDir, 'tmp'))).toEqual([]);
    // The intact upload then goes through.
    await s3.put('models', `${prefix}breast_cancer/3/model.onnx`, v3, { sha256: createHash('sha256').update(v3).digest('hex') });
    await until(async () => ((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).body.model_version === '3' ? true : undefined), 'version 3', 60_000);
  });

  it('keeps serving what is cached while the store is unreachable, and syncs again when it is back', async () => {
    const load = continuousLoad(url, 'breast_cancer', 4);
    await s3.stop();
    await until(() => (log.messages('model repository store unreachable; serving what is cached').length > 0 ? true : undefined), 'the outage noticed', 60_000);
    const before = load.result.ok;
    await until(() => (load.result.ok > before + 100 ? true : undefined), 'traffic during the outage');
    await s3.start();
    await until(() => (log.messages('model repository store reachable again').length > 0 ? true : undefined), 'the store back', 60_000);
    const result = await load.stop();
    expect(result.failed, result.errors.join('\n')).toBe(0);
    expect(result.versions.get('3')).toBe(result.ok);
    expect(BC_LABELS.length).toBe(8);
  });
});

describe('faults at the edges', () => {
  it('an unreachable store at start is a clear error naming the repository', async () => {
    const port = await freePort();
    const settings = await settingsFor(s3);
    settings.s3 = { endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, connectTimeoutMs: 1000 };
    const config = loadConfig({ env: {}, overrides: { model_repository: 's3://models/prod/repo' } });
    await expect(prepareModelRepository(config, settings)).rejects.toThrow(/model repository s3:\/\/models\/prod\/repo\/ cannot be listed/);
  });

  it('the server process exits with that error and never reports ready', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'inferd.js'), 'serve', '--model-repository', 's3://models/prod/repo', '--host', '127.0.0.1', '--port', '0', '--grpc-port', '-1'], {
      env: { ...process.env, ...s3.env, AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`, INFERD_STORAGE__S3__MAX_ATTEMPTS: '2', INFERD_STORAGE__CACHE_DIR: await mkdtemp(join(tmpdir(), 'inferd-cache-')) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(out).toMatch(/inferd: the model repository s3:\/\/models\/prod\/repo\/ cannot be listed/);
    expect(out).not.toMatch(/inferd ready/);
  });

  it('an interrupted download leaves no partial file in the cache', async () => {
    const big = randomBytes(24 * 1024 * 1024);
    await s3.put('models', 'interrupted/big/config.yaml', 'runtime: onnx\n');
    await s3.put('models', 'interrupted/big/1/model.onnx', big);
    const settings = await settingsFor(s3);
    let stopping: Promise<void> | undefined;
    const remote = new RemoteRepository('s3://models/interrupted', {
      cacheDir: settings.cacheDir,
      client: createS3Client({ ...settings.s3, maxAttempts: 1 }),
      partSize: 1024 * 1024,
      concurrency: 1,
      onProgress: (p) => {
        if (p.path === 'big/1/model.onnx' && p.done >= 4 * 1024 * 1024) stopping ??= s3.stop();
      },
    });
    const report = await remote.sync();
    await stopping;
    try {
      expect(report.refused.map((r) => r.path)).toContain('big/1/model.onnx');
      expect(await filesUnder(join(settings.cacheDir, 'tmp'))).toEqual([]);
      expect(await filesUnder(remote.localRoot)).not.toContain('big/1/model.onnx');
      const sha = createHash('sha256').update(big).digest('hex');
      await expect(stat(remote.cache.blobPath(sha))).rejects.toThrow(/ENOENT/);
    } finally {
      await s3.start();
    }
    // Once the store is back, the next sync completes the file.
    const again = await remote.sync();
    expect(again.refused).toEqual([]);
    expect(await filesUnder(remote.localRoot)).toEqual(['big/1/model.onnx', 'big/config.yaml']);
  });
});
