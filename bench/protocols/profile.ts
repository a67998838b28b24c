/**
 * Reads V8 .cpuprofile files (from `node --cpu-prof`) and aggregates self time by function name
 * and script URL, and by where the code comes from (inferd, a package, Node internals, V8).
 *
 *   npx tsx bench/protocols/profile.ts FILE.cpuprofile [...] [--top 20]
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  name: string;
  url: string;
  selfMs: number;
  /** Share of the thread's busy (non-idle) time, percent. */
  busyPct: number;
}

export interface ProfileSummary {
  file: string;
  /** Node names profiles CPU.<date>.<time>.<pid>.<thread id>.<seq>: thread 0 is the main thread. */
  thread: number;
  wallMs: number;
  busyMs: number;
  top: FunctionTime[];
  byOrigin: Array<{ origin: string; selfMs: number; busyPct: number }>;
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function shortUrl(url: string): string {
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(`${ROOT}/`)) u = u.slice(ROOT.length + 1);
  return u;
}

function originOf(name: string, url: string): string {
  if (name === '(idle)') return '(idle)';
  if (name === '(garbage collector)') return 'V8 garbage collector';
  if (name === '(program)') return 'V8/native, outside JavaScript (program)';
  if (url === '') return 'V8 built-ins and native calls';
  if (url.startsWith('node:')) return 'Node.js internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `package ${pkg[1]}`;
  const src = /^(?:dist|src)\/([^/]+)/.exec(url);
  if (src) return `inferd ${src[1]}/`;
  return url;
}

/**
 * Self time per function. `window` (microseconds on the process.hrtime clock, which V8's profile
 * timestamps share) keeps only the samples taken inside it, to leave out start-up and shutdown.
 */
export function summariseProfile(file: string, topN = 20, window?: { fromUs: number; toUs: number }): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  // A sample lasts until the next one; the last lasts until the profile ends.
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  const times: number[] = [];
  for (const d of profile.timeDeltas) {
    t += d;
    times.push(t);
  }
  const from = window?.fromUs ?? -Infinity;
  const to = window?.toUs ?? Infinity;
  for (let i = 0; i < profile.samples.length; i++) {
    const end = i + 1 < times.length ? times[i + 1]! : profile.endTime;
    if (times[i]! < from || times[i]! >= to) continue;
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, end - times[i]!));
  }
  const byFunction = new Map<string, { name: string; url: string; us: number }>();
  const byOrigin = new Map<string, number>();
  let idleUs = 0;
  let totalUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const name = frame.functionName || '(anonymous)';
    const url = shortUrl(frame.url);
    totalUs += us;
    if (name === '(idle)') {
      idleUs += us;
      continue;
    }
    const key = `${name}\u0000${url}`;
    const entry = byFunction.get(key) ?? { name, url, us: 0 };
    entry.us += us;
    byFunction.set(key, entry);
    const origin = originOf(name, url);
    byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us: number) => (busyUs > 0 ? (100 * us) / busyUs : 0);
  const thread = Number(basename(file).split('.')[4] ?? 0);
  return {
    file,
    thread,
    wallMs: (Math.min(to, profile.endTime) - Math.max(from, profile.startTime)) / 1000,
    busyMs: busyUs / 1000,
    top: [...byFunction.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ name: f.name, url: f.url, selfMs: f.us / 1000, busyPct: pct(f.us) })),
    byOrigin: [...byOrigin.entries()].sort((a, b) => b[1] - a[1]).map(([origin, us]) => ({ origin, selfMs: us / 1000, busyPct: pct(us) })),
  };
}

export function profileMarkdown(s: ProfileSummary, topN = 15): string {
  const lines = [
    `Thread ${s.thread === 0 ? 'main' : `worker ${s.thread}`}: ${(s.wallMs / 1000).toFixed(1)} s profiled, ${(s.busyMs / 1000).toFixed(2)} s busy (${((100 * s.busyMs) / s.wallMs).toFixed(0)}%).`,
    '',
    '| self time | % of busy | function | script |',
    '| ---: | ---: | --- | --- |',
    ...s.top.slice(0, topN).map((f) => `| ${f.selfMs.toFixed(0)} ms | ${f.busyPct.toFixed(1)} | \`${f.name}\` | ${f.url === '' ? '(V8/native)' : `\`${f.url}\``} |`),
    '',
    '| where | self time | % of busy |',
    '| --- | ---: | ---: |',
    ...s.byOrigin.slice(0, 10).map((o) => `| ${o.origin} | ${o.selfMs.toFixed(0)} ms | ${o.busyPct.toFixed(1)} |`),
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const files: string[] = [];
  let top = 20;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') top = Number(args[++i]);
    else files.push(args[i]!);
  }
  for (const f of files) {
    console.log(`### ${basename(f)}\n`);
    console.log(profileMarkdown(summariseProfile(f, top), top));
    console.log('');
  }
}
