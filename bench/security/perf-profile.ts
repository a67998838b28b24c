/**
 * Where the event loop's time goes with security off (A) and on (B), by Linux `perf` samples
 * rather than V8's profiler: native code (the HTTP parser, V8's builtins and runtime, garbage
 * collection, libuv, the kernel) is counted with the JavaScript functions, by name. Each round
 * serves breast_cancer at concurrency 64 from `inferd bench`, samples the server's event-loop
 * thread at a fixed frequency for `--seconds`, and divides each symbol's samples by the
 * requests served in that window: µs per request. Rounds alternate A, B, B, A...; symbols are
 * ranked by the median B − A.
 *
 *   npx tsx bench/security/perf-profile.ts [--rounds 4] [--seconds 4] [--top 40] [--a off] [--b secure]
 *
 * Sides: `off`, `header` (security off, the API key sent anyway: the wire's share), `auth` (keys
 * and roles), `local` (and a rate limit this replica keeps alone), `secure` (and the shared one, in Redis).
 * Needs `perf` (Debian's linux-perf); JIT code is named through `--perf-basic-prof-only-functions`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median, processCpuMicros, startServer } from '../support/ab.js';
import { securityBench } from './fixture.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '4' },
    top: { type: 'string', default: '40' },
    a: { type: 'string', default: 'off' },
    b: { type: 'string', default: 'secure' },
    frequency: { type: 'string', default: '4000' },
    // Writes every round's µs per request by symbol as JSON, to compare rounds with one another.
    dump: { type: 'string' },
  },
});
const root = resolve(import.meta.dirname, '..', '..');
const bench = await securityBench('inferd-secperf');
const work = mkdtempSync(join(tmpdir(), 'inferd-secperf-'));
const seconds = Number(values.seconds);
const frequency = Number(values.frequency);

interface SideSpec {
  config?: string;
  headers: Record<string, string>;
}
/** off: security off; header: security off, the key sent anyway; auth: keys and roles; secure: and the shared rate limit. */
function side(name: string): SideSpec {
  if (name === 'off') return { headers: {} };
  if (name === 'header') return { headers: { 'x-api-key': bench.key } };
  if (name === 'auth') return { config: bench.configs.auth, headers: { 'x-api-key': bench.key } };
  if (name === 'secure') return { config: bench.configs.secure, headers: { 'x-api-key': bench.key } };
  if (name === 'local') return { config: bench.configs.local, headers: { 'x-api-key': bench.key } };
  throw new Error(`unknown side ${name}: off, header, auth or secure`);
}
const sides: Record<'A' | 'B', SideSpec> = { A: side(values.a), B: side(values.b) };

async function served(port: number, headers: Record<string, string>): Promise<number> {
  const answer = await fetch(`http://127.0.0.1:${port}/v2/models/breast_cancer/stats`, { headers });
  const body = (await answer.json()) as { model_stats: Array<{ inference_stats: { success: { count: number } } }> };
  return body.model_stats.reduce((n, m) => n + m.inference_stats.success.count, 0);
}

/** µs per request by symbol for one round of one side. */
async function round(label: 'A' | 'B', n: number): Promise<Map<string, number>> {
  const side = sides[label];
  const s = await startServer({
    checkout: root,
    repository: resolve(root, 'examples', 'models'),
    ...(side.config !== undefined ? { config: side.config } : {}),
    nodeArgs: ['--perf-basic-prof-only-functions'],
  });
  const pid = s.child.pid!;
  const args = [resolve(root, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', 'http', '-u', `http://127.0.0.1:${s.http}`, '--concurrency-range', '64', '--windows', '1', '--window-ms', String((seconds + 4) * 1000), '--warmup-ms', '500', '--no-progress'];
  for (const [k, v] of Object.entries(side.headers)) args.push('-H', `${k}: ${v}`);
  const load = spawn(process.execPath, args, { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const file = join(work, `${label}-${n}.data`);
    const before = await served(s.http, side.headers);
    const serverBefore = processCpuMicros(pid) ?? 0;
    const switchesBefore = contextSwitches(pid);
    const clientBefore = processCpuMicros(load.pid!) ?? 0;
    const perf = spawnSync('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(frequency), '-t', String(pid), '-o', file, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
    if (perf.status !== 0) throw new Error(`perf record exited ${perf.status}`);
    const serverCpu = (processCpuMicros(pid) ?? 0) - serverBefore;
    const switchesAfter = contextSwitches(pid);
    const clientCpu = (processCpuMicros(load.pid!) ?? 0) - clientBefore;
    const after = await served(s.http, side.headers);
    const requests = after - before;
    const report = spawnSync('perf', ['report', '-i', file, '--sort', 'sym', '--stdio', '--no-children', '-F', 'sample,sym', '--percent-limit', '0'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const bySymbol = new Map<string, number>();
    let total = 0;
    for (const line of report.stdout.split('\n')) {
      const m = /^\s+(\d+)\s+\[[^\]]+\]\s+(.+?)\s*$/.exec(line);
      if (m === null) continue;
      const name = normalise(m[2]!);
      const us = (Number(m[1]) * 1e6) / frequency / requests;
      total += us;
      bySymbol.set(name, (bySymbol.get(name) ?? 0) + us);
    }
    bySymbol.set('(total)', total);
    bySymbol.set('(server, all threads, /proc)', serverCpu / requests);
    bySymbol.set('(load generator, /proc)', clientCpu / requests);
    // Per 100 requests, so they read on the same scale as the µs figures.
    bySymbol.set('(event loop: voluntary context switches per 100 requests)', ((switchesAfter.voluntary - switchesBefore.voluntary) * 100) / requests);
    bySymbol.set('(event loop: involuntary context switches per 100 requests)', ((switchesAfter.involuntary - switchesBefore.involuntary) * 100) / requests);
    console.error(
      `round ${n + 1} ${label}: ${requests} requests in ${seconds} s, event loop ${total.toFixed(2)} µs/request sampled, server ${(serverCpu / requests).toFixed(2)}, load generator ${(clientCpu / requests).toFixed(2)} µs/request`,
    );
    return bySymbol;
  } finally {
    load.kill('SIGKILL');
    s.child.kill('SIGTERM');
    await new Promise((r) => s.child.once('exit', r));
    rmSync(`/tmp/perf-${pid}.map`, { force: true });
  }
}

/** Context switches of the event-loop thread so far: it gave up the core (voluntary) or was preempted. */
function contextSwitches(pid: number): { voluntary: number; involuntary: number } {
  const status = readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { voluntary: field('voluntary_ctxt_switches'), involuntary: field('nonvoluntary_ctxt_switches') };
}

/** JIT names carry an address-like suffix and a tier marker; keep the function and its file. */
function normalise(symbol: string): string {
  return symbol
    .replace(/^(?:JS|LazyCompile|Function):[*~^+]?/, 'JS:')
    .replace(/ \S+\/(src|node_modules|dist)\//, ' $1/')
    .replace(/:\d+:\d+$/, '');
}

const load0 = loadavg()[0]!.toFixed(2);
const runs: Record<'A' | 'B', Array<Map<string, number>>> = { A: [], B: [] };
try {
  for (let n = 0; n < Number(values.rounds); n++) {
    for (const label of n % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) runs[label].push(await round(label, n));
  }
} finally {
  bench.stop();
  rmSync(work, { recursive: true, force: true });
}
if (values.dump !== undefined) {
  writeFileSync(values.dump, JSON.stringify({ A: runs.A.map((r) => Object.fromEntries(r)), B: runs.B.map((r) => Object.fromEntries(r)) }));
}
const names = new Set<string>();
for (const r of [...runs.A, ...runs.B]) for (const k of r.keys()) names.add(k);
const rows = [...names].map((name) => {
  const a = median(runs.A.map((r) => r.get(name) ?? 0));
  const b = median(runs.B.map((r) => r.get(name) ?? 0));
  return { name, a, b, diff: b - a };
});
rows.sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff));
console.log(`load average ${load0} → ${loadavg()[0]!.toFixed(2)}; A = ${values.a}, B = ${values.b}; µs per request on the event loop (median of ${values.rounds} rounds)`);
console.log('   A       B     B−A   symbol');
for (const r of rows.slice(0, Number(values.top))) console.log(`${r.a.toFixed(3).padStart(7)} ${r.b.toFixed(3).padStart(7)} ${r.diff.toFixed(3).padStart(7)}   ${r.name.slice(0, 140)}`);
