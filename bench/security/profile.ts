/**
 * Where the server's main thread spends its time with security off (A) and on (B: API keys,
 * authorisation, the shared rate limit leasing from a throwaway redis-server): each side is
 * served once under `node --cpu-prof`, loaded with breast_cancer at concurrency 64 over REST,
 * and its profile is cut to the load window. Prints busy µs per request on each side and the
 * functions whose self time per request differs most.
 *
 *   npx tsx bench/security/profile.ts [--seconds 5] [--top 25]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summariseProfile } from '../protocols/profile.js';
import { startServer } from '../support/ab.js';
import { securityBench } from './fixture.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, top: { type: 'string', default: '25' } } });
const seconds = Number(values.seconds);
const root = resolve(import.meta.dirname, '..', '..');
const bench = await securityBench('inferd-secprof');
const { dir, key } = bench;
const secure = bench.configs.secure;

async function profileSide(label: string, config?: string, headers: Record<string, string> = {}): Promise<{ perRequest: Map<string, number>; busyUs: number; rps: number }> {
  const profDir = mkdtempSync(join(dir, `prof-${label}-`));
  const s = await startServer({ checkout: root, repository: resolve(root, 'examples', 'models'), ...(config ? { config } : {}), nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profDir}`] });
  const report = join(profDir, 'report.json');
  const args = [resolve(root, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', 'http', '-u', `http://127.0.0.1:${s.http}`, '--concurrency-range', '64', '--windows', '1', '--window-ms', String(seconds * 1000), '--warmup-ms', '1000', '--no-progress', '--json', report];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  await new Promise<void>((res, rej) => spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] }).on('exit', (code) => (code === 0 ? res() : rej(new Error(`inferd bench exited ${code}`)))));
  const loadEnd = performance.now();
  s.child.kill('SIGTERM');
  await new Promise((r) => s.child.once('exit', r));
  const exitedAt = performance.now();
  const steps = (JSON.parse(readFileSync(report, 'utf8')) as { steps: Array<{ throughput: number }> }).steps;
  const rps = steps[0]!.throughput;
  // The measured window: the bench's last `seconds` of load, less a margin at each end (the
  // profile's clock is the server's, so the window is placed by its distance from the exit;
  // writing the profile at exit shifts it a little earlier, inside the margin).
  const windowStartUs = (exitedAt - (loadEnd - seconds * 1000 + 300)) * 1000;
  const windowEndUs = (exitedAt - (loadEnd - 300)) * 1000;
  // Worker threads write profiles too; the event loop's is the one that ran Fastify.
  const mainFile = readdirSync(profDir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(profDir, f))
    .find((f) => readFileSync(f, 'utf8').includes('node_modules/fastify/'))!;
  const { endTime } = JSON.parse(readFileSync(mainFile, 'utf8')) as { endTime: number };
  const summary = summariseProfile(mainFile, Infinity, { fromUs: endTime - windowStartUs, toUs: endTime - windowEndUs });
  const byFunction = new Map(summary.top.map((f) => [`${f.name} ${f.url}`, f.selfMs * 1000]));
  const busy = summary.busyMs * 1000;
  const requests = (rps * (windowStartUs - windowEndUs)) / 1e6;
  const perRequest = new Map<string, number>();
  for (const [name, us] of byFunction) perRequest.set(name, us / requests);
  return { perRequest, busyUs: busy / requests, rps };
}

const loadBefore = loadavg()[0]!.toFixed(2);
try {
  const a = await profileSide('A');
  const b = await profileSide('B', secure, { 'x-api-key': key });
  const names = new Set([...a.perRequest.keys(), ...b.perRequest.keys()]);
  const diffs = [...names]
    .filter((n) => !n.startsWith('(idle)'))
    .map((n) => ({ fn: n, a: a.perRequest.get(n) ?? 0, b: b.perRequest.get(n) ?? 0 }))
    .map((d) => ({ ...d, diff: d.b - d.a }))
    .sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff))
    .slice(0, Number(values.top));
  console.log(`main thread busy per request: A ${a.busyUs.toFixed(2)} µs at ${Math.round(a.rps)} req/s, B ${b.busyUs.toFixed(2)} µs at ${Math.round(b.rps)} req/s`);
  console.log('self µs per request   A      B      B-A   function');
  for (const d of diffs) console.log(`${d.a.toFixed(3).padStart(24)} ${d.b.toFixed(3).padStart(6)} ${d.diff.toFixed(3).padStart(6)}   ${d.fn}`);
  console.log(`load average ${loadBefore} → ${loadavg()[0]!.toFixed(2)}`);
} finally {
  bench.stop();
}
