/**
 * Cold start from three places, on real `inferd serve` processes and a real S3-compatible store
 * (SeaweedFS on the loopback, built by scripts/setup/components/seaweedfs.sh):
 * - local disk: the repository is a directory;
 * - object store: `--model-repository s3://bench/<model>/` with an empty cache (download,
 *   SHA-256/MD5 check, then the load);
 * - local cache: the same again with the cache the previous start filled (nothing downloaded).
 * For mobilenet_v2 (14 MB, ../shared/models) and a loadable ONNX model of --large-mb MB (one
 * FP32 initializer behind a Gather, written by large-model.ts). Per start: spawn → ready, the
 * model's load time as the admin API reports it, and the download's bytes and time from the
 * server's log line. Medians of --runs runs.
 *
 *   npm run build && npx tsx bench/storage/cold-start.ts [--runs 1] [--large-mb 520]
 */
import { Upload } from '@aws-sdk/lib-storage';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3, type S3Server } from '../../test/support/s3.js';
import { flag, freePort, median, round, ROOT, SHARED } from '../lifecycle/common.js';
import { writeLargeModel } from './large-model.js';
import { serverNodeFlags } from '../support/node-flags.js';

const RUNS = Number(flag('runs', '1'));
const LARGE_MB = Number(flag('large-mb', '520'));

interface Start {
  readyMs: number;
  loadMs: number;
  downloadMs: number;
  downloadBytes: number;
}

interface Model {
  name: string;
  config: string;
  body: unknown;
  make(dir: string): Promise<void>;
}

const MODELS: Model[] = [
  {
    name: 'mobilenet_v2',
    config: 'max_batch_size: 8\nonnx: { intra_op_threads: 2 }\nwarmup: []\n',
    body: { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data: Array(3 * 224 * 224).fill(0.1) }] },
    make: (dir) => cp(join(SHARED, 'mobilenet_v2', '1', 'model.onnx'), join(dir, '1', 'model.onnx')),
  },
  {
    name: 'large',
    config: 'max_batch_size: 0\nwarmup: []\n',
    body: { inputs: [{ name: 'index', datatype: 'INT64', shape: [2], data: [0, 1] }] },
    make: async (dir) => {
      await writeLargeModel(join(dir, '1', 'model.onnx'), Math.floor((LARGE_MB * 1e6) / 4));
    },
  },
];

async function serve(repository: string, env: Record<string, string>): Promise<Start> {
  const port = await freePort();
  const started = performance.now();
  const child = spawn(process.execPath, [...serverNodeFlags(ROOT), join(ROOT, 'bin', 'inferd.js'), 'serve', '--model-repository', repository, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', '-1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, INFERD_LOGGING__ACCESS_LOG: 'false', INFERD_LOGGING__LEVEL: 'info', ...env },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 600_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inferd exited (${child.exitCode}) before it was ready:\n${out.slice(-3000)}`);
    const ok = await fetch(`${url}/health/ready`).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error('inferd not ready after 600 s');
    await new Promise((r) => setTimeout(r, 10));
  }
  const readyMs = performance.now() - started;
  const models = (await (await fetch(`${url}/v2/admin/models`)).json()) as { models: Array<{ name: string; last_load_ms?: number }> };
  const loadMs = models.models[0]?.last_load_ms ?? Number.NaN;
  let downloadMs = 0;
  let downloadBytes = 0;
  for (const line of out.split('\n')) {
    if (!line.includes('"msg":"artifact downloaded"')) continue;
    const l = JSON.parse(line) as { ms: number; bytes: number };
    downloadMs += l.ms;
    downloadBytes += l.bytes;
  }
  await new Promise<void>((res) => {
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
  return { readyMs, loadMs, downloadMs, downloadBytes };
}

async function upload(s3: S3Server, dir: string, prefix: string): Promise<void> {
  for (const rel of ['config.yaml', '1/model.onnx']) {
    const file = join(dir, rel);
    await new Upload({
      client: s3.client,
      params: { Bucket: 'bench', Key: `${prefix}${rel}`, Body: createReadStream(file), ContentLength: (await stat(file)).size },
      partSize: 16 * 1024 * 1024,
      queueSize: 4,
    }).done();
  }
}

const s3 = await startS3();
const rows: string[] = [];
try {
  await s3.createBucket('bench');
  const env = { ...s3.env };
  for (const model of MODELS) {
    const root = await mkdtemp(join(tmpdir(), 'inferd-storage-bench-'));
    const dir = join(root, model.name);
    await mkdir(join(dir, '1'), { recursive: true });
    await writeFile(join(dir, 'config.yaml'), model.config);
    await model.make(dir);
    const size = (await stat(join(dir, '1', 'model.onnx'))).size;
    await upload(s3, dir, `${model.name}/${model.name}/`);
    const disk: Start[] = [];
    const cold: Start[] = [];
    const warm: Start[] = [];
    for (let i = 0; i < RUNS; i++) {
      disk.push(await serve(root, env));
      const cache = await mkdtemp(join(tmpdir(), 'inferd-storage-cache-'));
      cold.push(await serve(`s3://bench/${model.name}/`, { ...env, INFERD_STORAGE__CACHE_DIR: cache }));
      warm.push(await serve(`s3://bench/${model.name}/`, { ...env, INFERD_STORAGE__CACHE_DIR: cache }));
      await rm(cache, { recursive: true, force: true });
    }
    const mb = round(size / 1e6, 0);
    const row = (what: string, xs: Start[]) => {
      const dl = median(xs.map((x) => x.downloadMs));
      const bytes = median(xs.map((x) => x.downloadBytes));
      const rate = dl > 0 ? `${round(bytes / 1e6 / (dl / 1000), 0)} MB/s` : '';
      return `| ${model.name} (${mb} MB) | ${what} | ${round(median(xs.map((x) => x.readyMs)) / 1000, 2)} | ${round(median(xs.map((x) => x.loadMs)) / 1000, 2)} | ${dl > 0 ? `${round(dl / 1000, 2)} (${round(bytes / 1e6, 0)} MB, ${rate})` : '—'} |`;
    };
    rows.push(row('local disk', disk), row('object store, empty cache', cold), row('local cache', warm));
    console.error(rows.slice(-3).join('\n'));
    await rm(root, { recursive: true, force: true });
  }
} finally {
  await s3.destroy();
}
console.log(`runs: ${RUNS} (medians)\n`);
console.log('| model | source | spawn → ready (s) | model load (s) | download (s) |');
console.log('|---|---|---|---|---|');
console.log(rows.join('\n'));
