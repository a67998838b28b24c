/**
 * What security adds to the server's garbage: breast_cancer at concurrency 64 over REST with
 * security off (A) and on (B, as in overhead.ts), each server loaded with `alloc-probe.mjs`,
 * which runs V8's sampling heap profiler (collected objects included) and counts garbage
 * collections during the load window only. Rounds alternate A, B, B, A... Prints, per side,
 * the median bytes allocated per request, scavenges and mark-compacts per 10,000 requests,
 * then the allocation sites (function and line) ranked by B − A bytes per request, and the
 * inferd functions whose calls (with everything below them) allocate most more in B.
 *
 *   npx tsx bench/security/allocations.ts [--rounds 2] [--seconds 4] [--interval 1024] [--top 25] [--b secure] [--no-inlining]
 *
 * `--b auth` or `--b registry` serves B with authentication alone, or only a registry.
 * `--no-inlining` serves without TurboFan inlining: allocations then stay with the function
 * that makes them (the totals grow, since escape analysis removes less).
 * `--interval` is the profiler's mean bytes between samples: smaller is finer and slower.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startServer, type Served } from '../support/ab.js';
import { securityBench } from './fixture.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '2' }, seconds: { type: 'string', default: '4' }, interval: { type: 'string', default: '1024' }, top: { type: 'string', default: '25' }, b: { type: 'string', default: 'secure' }, 'no-inlining': { type: 'boolean', default: false } },
});
const seconds = Number(values.seconds);
const root = resolve(import.meta.dirname, '..', '..');
const probe = resolve(import.meta.dirname, 'alloc-probe.mjs');

interface HeapNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}
interface ProbeOutput {
  gc: Record<'minor' | 'major' | 'incremental' | 'other', { count: number; ms: number }>;
  profile: { head: HeapNode; samples: Array<{ size: number; nodeId: number }> };
}

interface RoundResult {
  requests: number;
  rps: number;
  bytesPerRequest: number;
  scavengesPer10k: number;
  majorPer10k: number;
  gcMsPer10k: number;
  /** Self bytes per request by allocation site. */
  sites: Map<string, number>;
  /** Bytes per request allocated under each inferd function (inclusive, counted once per stack). */
  inclusive: Map<string, number>;
  /** Self bytes per request by script (less sensitive than sites to what the compiler inlined). */
  scripts: Map<string, number>;
}

const shortUrl = (url: string): string => url.replace(/^file:\/\//, '').replace(`${root}/`, '');
const frameName = (f: HeapNode['callFrame']): string => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`;

async function served(s: Served, headers: Record<string, string>): Promise<number> {
  const answer = await fetch(`http://127.0.0.1:${s.http}/v2/models/breast_cancer/stats`, { headers });
  const body = (await answer.json()) as { model_stats: Array<{ inference_stats: { success: { count: number } } }> };
  return body.model_stats.reduce((n, m) => n + m.inference_stats.success.count, 0);
}

function load(s: Served, headers: Record<string, string>, windowMs: number, warmupMs: number, report: string): Promise<number> {
  const args = [resolve(root, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', 'http', '-u', `http://127.0.0.1:${s.http}`, '--concurrency-range', '64', '--windows', '1', '--window-ms', String(windowMs), '--warmup-ms', String(warmupMs), '--no-progress', '--json', report];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  return new Promise((res, rej) =>
    spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] }).on('exit', (code) => {
      if (code !== 0) return rej(new Error(`inferd bench exited ${code}`));
      res((JSON.parse(readFileSync(report, 'utf8')) as { steps: Array<{ throughput: number }> }).steps[0]!.throughput);
    }),
  );
}

async function measure(dir: string, label: string, config: string | undefined, headers: Record<string, string>): Promise<RoundResult> {
  const work = mkdtempSync(join(dir, `alloc-${label}-`));
  const out = join(work, 'probe.json');
  const s = await startServer({
    checkout: root,
    repository: resolve(root, 'examples', 'models'),
    ...(config ? { config } : {}),
    nodeArgs: [...(values['no-inlining'] ? ['--no-turbo-inlining'] : []), '--import', probe],
    env: { ALLOC_PROBE_OUT: out, ALLOC_PROBE_INTERVAL: values.interval! },
  });
  try {
    await load(s, headers, 1000, 500, join(work, 'warmup.json'));
    const before = await served(s, headers);
    s.child.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 100));
    const rps = await load(s, headers, seconds * 1000, 0, join(work, 'report.json'));
    s.child.kill('SIGUSR2');
    const deadline = Date.now() + 30_000;
    while (!existsSync(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 300));
    const requests = (await served(s, headers)) - before;
    const probed = JSON.parse(readFileSync(out, 'utf8')) as ProbeOutput;
    const sites = new Map<string, number>();
    const inclusive = new Map<string, number>();
    const scripts = new Map<string, number>();
    let total = 0;
    const walk = (node: HeapNode, inferdAbove: Set<string>): void => {
      const name = frameName(node.callFrame);
      let seen = inferdAbove;
      if (/\/dist\//.test(node.callFrame.url) && !inferdAbove.has(name)) {
        seen = new Set(inferdAbove);
        seen.add(name);
      }
      if (node.selfSize > 0) {
        total += node.selfSize;
        sites.set(name, (sites.get(name) ?? 0) + node.selfSize / requests);
        const script = shortUrl(node.callFrame.url) || node.callFrame.functionName;
        scripts.set(script, (scripts.get(script) ?? 0) + node.selfSize / requests);
        for (const f of seen) inclusive.set(f, (inclusive.get(f) ?? 0) + node.selfSize / requests);
      }
      for (const child of node.children) walk(child, seen);
    };
    walk(probed.profile.head, new Set());
    const gc = probed.gc;
    return {
      requests,
      rps,
      bytesPerRequest: total / requests,
      scavengesPer10k: (gc.minor.count * 10_000) / requests,
      majorPer10k: (gc.major.count * 10_000) / requests,
      gcMsPer10k: ((gc.minor.ms + gc.major.ms + gc.incremental.ms) * 10_000) / requests,
      sites,
      inclusive,
      scripts,
    };
  } finally {
    s.child.kill('SIGTERM');
    await new Promise((r) => s.child.once('exit', r));
  }
}

function mergeMedian(rounds: RoundResult[], pick: (r: RoundResult) => Map<string, number>): Map<string, number> {
  const names = new Set(rounds.flatMap((r) => [...pick(r).keys()]));
  return new Map([...names].map((n) => [n, median(rounds.map((r) => pick(r).get(n) ?? 0))]));
}

function ranked(a: Map<string, number>, b: Map<string, number>, top: number): Array<{ name: string; a: number; b: number; diff: number }> {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names]
    .map((name) => ({ name, a: a.get(name) ?? 0, b: b.get(name) ?? 0, diff: (b.get(name) ?? 0) - (a.get(name) ?? 0) }))
    .sort((x, y) => Math.abs(y.diff) - Math.abs(x.diff))
    .slice(0, top);
}

const bench = await securityBench('inferd-secalloc');
const loadBefore = loadavg()[0]!.toFixed(2);
try {
  const keyHeader: Record<string, string> = values.b === 'registry' ? {} : { 'x-api-key': bench.key };
  const sides = { A: { config: undefined, headers: {} }, B: { config: bench.configs[values.b as 'secure' | 'auth' | 'registry'], headers: keyHeader } };
  const rounds: Record<'A' | 'B', RoundResult[]> = { A: [], B: [] };
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const label of round % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      const r = await measure(bench.dir, label, sides[label].config, sides[label].headers);
      rounds[label].push(r);
      console.error(
        `round ${round + 1} ${label}: ${Math.round(r.rps)} req/s, ${r.bytesPerRequest.toFixed(0)} B/request, ${r.scavengesPer10k.toFixed(1)} scavenges and ${r.majorPer10k.toFixed(2)} mark-compacts per 10k requests, GC ${r.gcMsPer10k.toFixed(1)} ms per 10k`,
      );
    }
  }
  const summary = (label: 'A' | 'B') => ({
    rps: Math.round(median(rounds[label].map((r) => r.rps))),
    bytesPerRequest: Math.round(median(rounds[label].map((r) => r.bytesPerRequest))),
    scavengesPer10k: Math.round(median(rounds[label].map((r) => r.scavengesPer10k)) * 10) / 10,
    majorPer10k: Math.round(median(rounds[label].map((r) => r.majorPer10k)) * 100) / 100,
    gcMsPer10k: Math.round(median(rounds[label].map((r) => r.gcMsPer10k)) * 10) / 10,
  });
  console.log(JSON.stringify({ A: summary('A'), B: summary('B') }));
  const top = Number(values.top);
  console.log('\nallocation sites, self bytes per request   A       B     B-A');
  for (const d of ranked(mergeMedian(rounds.A, (r) => r.sites), mergeMedian(rounds.B, (r) => r.sites), top)) console.log(`${d.a.toFixed(1).padStart(10)} ${d.b.toFixed(1).padStart(7)} ${d.diff.toFixed(1).padStart(7)}   ${d.name}`);
  console.log('\nscripts, self bytes per request   A       B     B-A');
  for (const d of ranked(mergeMedian(rounds.A, (r) => r.scripts), mergeMedian(rounds.B, (r) => r.scripts), top)) console.log(`${d.a.toFixed(1).padStart(10)} ${d.b.toFixed(1).padStart(7)} ${d.diff.toFixed(1).padStart(7)}   ${d.name}`);
  console.log('\ninferd functions, bytes per request allocated under them   A       B     B-A');
  for (const d of ranked(mergeMedian(rounds.A, (r) => r.inclusive), mergeMedian(rounds.B, (r) => r.inclusive), top)) console.log(`${d.a.toFixed(1).padStart(10)} ${d.b.toFixed(1).padStart(7)} ${d.diff.toFixed(1).padStart(7)}   ${d.name}`);
  console.log(`\nload average ${loadBefore} → ${loadavg()[0]!.toFixed(2)}`);
} finally {
  bench.stop();
}
