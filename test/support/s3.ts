/**
 * A real, throw-away S3-compatible server for tests: SeaweedFS (`weed server -s3`, built by
 * scripts/setup/components/seaweedfs.sh) with its data in a fresh temporary directory, every
 * port a free one on 127.0.0.1, telemetry off, and one S3 identity with an access/secret key.
 * It can be stopped and started again on the same ports and data (an outage), then destroyed.
 */
import { CreateBucketCommand, ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';
import { setupCacheDir } from './setup-cache.js';

export interface S3Server {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  client: S3Client;
  /** Environment for child processes: credentials and endpoint the AWS way. */
  env: Record<string, string>;
  createBucket(name: string): Promise<void>;
  put(bucket: string, key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void>;
  /** Uploads a local directory tree under `prefix` (keys use '/'). */
  putTree(bucket: string, prefix: string, dir: string): Promise<number>;
  /** Stops the server, keeping its data (the store becomes unreachable). */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  destroy(): Promise<void>;
  output(): string;
}

export function weedBinary(): string {
  const cache = setupCacheDir();
  const bin = path.join(cache, 'seaweedfs', 'weed');
  if (!existsSync(bin)) throw new Error(`SeaweedFS is not built (${bin} is missing): run bash scripts/setup/test-deps.sh`);
  return bin;
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(path.join(dir, rel))) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const s = await stat(path.join(dir, r));
    if (s.isDirectory()) out.push(...(await walk(dir, r)));
    else if (s.isFile()) out.push(r);
  }
  return out;
}

export async function startS3(): Promise<S3Server> {
  const bin = weedBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-s3-'));
  const data = path.join(dir, 'data');
  await mkdir(data);
  const accessKeyId = `inferd${randomBytes(4).toString('hex')}`;
  const secretAccessKey = randomBytes(20).toString('hex');
  const config = path.join(dir, 's3.json');
  await writeFile(
    config,
    JSON.stringify({ identities: [{ name: 'tester', credentials: [{ accessKey: accessKeyId, secretKey: secretAccessKey }], actions: ['Admin', 'Read', 'Write', 'List', 'Tagging'] }] }),
  );
  const ports: number[] = [];
  while (ports.length < 8) {
    const p = await freePort();
    if (!ports.includes(p)) ports.push(p);
  }
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = ports as [number, number, number, number, number, number, number, number];
  const args = [
    'server',
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-dir=${data}`,
    '-master.telemetry=false',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.volumeSizeLimitMB=1024',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-volume.max=20',
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    `-filer.localSocket=${path.join(dir, 'filer.sock')}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
    `-s3.localSocket=${path.join(dir, 's3.sock')}`,
    `-s3.config=${config}`,
  ];
  const endpoint = `http://127.0.0.1:${s3}`;
  const region = 'us-east-1';
  const client = new S3Client({ endpoint, region, forcePathStyle: true, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 2 });
  let child: ChildProcess | undefined;
  let out = '';

  const start = async () => {
    const proc = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
    child = proc;
    proc.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    proc.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`weed exited with ${proc.exitCode}:\n${out.slice(-4000)}`);
      try {
        await client.send(new ListBucketsCommand({}));
        // Writes need a volume: wait until a probe object can be stored.
        await client.send(new CreateBucketCommand({ Bucket: 'inferd-probe' })).catch(() => undefined);
        await client.send(new PutObjectCommand({ Bucket: 'inferd-probe', Key: 'probe', Body: 'ok' }));
        return;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`SeaweedFS did not serve S3 on ${endpoint} within 90 s:\n${out.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (error) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }

  const put = async (bucket: string, key: string, body: Buffer | string, metadata?: Record<string, string>): Promise<void> => {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ...(metadata ? { Metadata: metadata } : {}) }));
  };
  return {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey,
    client,
    env: { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: region, AWS_ENDPOINT_URL_S3: endpoint },
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    put,
    async putTree(bucket, prefix, local) {
      const files = await walk(local);
      for (const f of files) await put(bucket, `${prefix}${f}`, await readFile(path.join(local, f)));
      return files.length;
    },
    stop,
    start,
    async destroy() {
      await stop();
      client.destroy();
      await rm(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
}
