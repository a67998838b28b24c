/** Shared pieces of the lifecycle benchmarks: a real `inferd serve` child, HTTP loops, statistics. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { freePort } from '../../test/support/ports.js';
export { freePort };
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { serverNodeFlags } from '../support/node-flags.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = resolve(ROOT, '..', 'shared', 'models');
export const EXAMPLES = join(ROOT, 'examples', 'models');

const args = process.argv.slice(2);
export function flag(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
export const percentile = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
export const round = (x: number, d = 1): number => Math.round(x * 10 ** d) / 10 ** d;

export interface Server {
  url: string;
  child: ChildProcess;
  /** performance.now() at spawn and when /health/ready first answered 200. */
  spawnedAt: number;
  readyAt: number;
  stop(): Promise<void>;
  /** Resident set size of the server process (Linux /proc), bytes. */
  rss(): number;
}

/** Runs the compiled CLI (`npm run build` first) with a configuration file; waits for readiness. */
export async function startServer(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), 'inferd-lifecycle-'));
  const file = join(dir, 'inferd.yaml');
  await writeFile(file, YAML.stringify(config));
  const port = await freePort();
  const spawnedAt = performance.now();
  const child = spawn(process.execPath, [...serverNodeFlags(ROOT), join(ROOT, 'bin', 'inferd.js'), 'serve', '--config', file, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', '-1'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, INFERD_LOGGING__ACCESS_LOG: 'false', INFERD_LOGGING__LEVEL: 'warn', ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inferd exited (${child.exitCode}) before it was ready`);
    try {
      const r = await fetch(`${url}/health/ready`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('inferd not ready after 120 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyAt = performance.now();
  return {
    url,
    child,
    spawnedAt,
    readyAt,
    stop: () =>
      new Promise((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
      }),
    rss: () => {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1] ?? Number.NaN);
      return kb * 1024;
    },
  };
}

export interface Sample {
  start: number;
  end: number;
  status: number;
  version: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One POST on a keep-alive socket; status 0 for a network error. */
export function post(url: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((res) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      r.on('error', () => res({ status: 0, text: '' }));
    });
    req.on('error', (e) => res({ status: 0, text: String(e) }));
    req.end(body);
  });
}

/** `concurrency` closed loops of `body` to `url` until stop(); every request is kept as a sample. */
export function closedLoop(url: string, body: string, concurrency: number): { stop(): Promise<Sample[]>; samples: Sample[] } {
  const samples: Sample[] = [];
  let running = true;
  const loop = async () => {
    while (running) {
      const start = performance.now();
      const r = await post(url, body);
      const end = performance.now();
      let version = '';
      if (r.status === 200) version = /"model_version":"([^"]*)"/.exec(r.text)?.[1] ?? '';
      samples.push({ start, end, status: r.status, version });
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
      return samples;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
