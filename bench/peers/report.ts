/**
 * Turns the raw results of run.sh into bench/RESULTS.md: medians over rounds, one table per
 * model with absolute figures and ratios to inferd, and the compute limit of the model file.
 *
 *   node --import tsx bench/peers/report.ts <results-dir> <out.md>
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { BenchReport } from '../../src/loadgen/index.js';

interface RawPoint {
  threads: number;
  batch: number;
  rowsPerSec: number;
  p50RunUs: number;
}
interface RawReport {
  points: RawPoint[];
}

const [dir, out] = [process.argv[2], process.argv[3]];
if (!dir || !out) throw new Error('usage: report.ts <results-dir> <out.md>');
const commandsFile = path.join(dir, 'commands.txt');
const commands = existsSync(commandsFile)
  ? [...new Set(readFileSync(commandsFile, 'utf8').trim().split('\n').filter(Boolean))]
  : ['bash bench/peers/run.sh'];

const MODELS = ['breast_cancer', 'mobilenet_v2'] as const;
const PEER_ORDER = ['inferd', 'inferd-nobatch', 'triton', 'mlserver', 'fastapi-1w', 'fastapi-2w', 'http-limit', 'http-limit-node'];
const PEER_LABEL: Record<string, string> = {
  inferd: 'inferd',
  'inferd-nobatch': 'inferd, dynamic batching off',
  triton: 'Triton (Python backend + onnxruntime)',
  mlserver: 'MLServer (custom ONNX runtime, adaptive batching)',
  'fastapi-1w': 'FastAPI + ProcessPool, 1 worker',
  'fastapi-2w': 'FastAPI + ProcessPool, 2 workers',
  'http-limit': 'HTTP limit (Fastify, parse + constant)',
  'http-limit-node': 'HTTP limit (node:http, parse + constant)',
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface Cell {
  rps: number;
  rpsMin: number;
  rpsMax: number;
  p50: number;
  p99: number;
  errors: number;
  rounds: number;
  stable: boolean;
}

/** peer -> model -> concurrency -> runs */
const runs = new Map<string, Map<string, Map<number, { rps: number; p50: number; p99: number; errors: number; stable: boolean }[]>>>();
const raw = new Map<string, RawReport[]>();
for (const f of readdirSync(dir)) {
  const m = /^(.+)__(.+)__r(.+)\.json$/.exec(f);
  if (!m) continue;
  const [, peer, model] = m as unknown as [string, string, string];
  const doc: unknown = JSON.parse(readFileSync(path.join(dir, f), 'utf8'));
  if (peer === 'raw-onnx') {
    raw.set(model, [...(raw.get(model) ?? []), doc as RawReport]);
    continue;
  }
  const rep = doc as BenchReport;
  const byModel = runs.get(peer) ?? new Map();
  runs.set(peer, byModel);
  const byConc = byModel.get(model) ?? new Map();
  byModel.set(model, byConc);
  for (const s of rep.steps) {
    const c = s.concurrency ?? 0;
    byConc.set(c, [
      ...(byConc.get(c) ?? []),
      { rps: s.throughput, p50: s.latency.p50Us, p99: s.latency.p99Us, errors: s.errorCount, stable: s.stable },
    ]);
  }
}

function cell(peer: string, model: string, c: number): Cell | undefined {
  const xs = runs.get(peer)?.get(model)?.get(c);
  if (!xs || xs.length === 0) return undefined;
  return {
    rps: median(xs.map((x) => x.rps)),
    rpsMin: Math.min(...xs.map((x) => x.rps)),
    rpsMax: Math.max(...xs.map((x) => x.rps)),
    p50: median(xs.map((x) => x.p50)),
    p99: median(xs.map((x) => x.p99)),
    errors: xs.reduce((a, x) => a + x.errors, 0),
    rounds: xs.length,
    stable: xs.every((x) => x.stable),
  };
}

function concurrencies(model: string): number[] {
  const set = new Set<number>();
  for (const byModel of runs.values()) for (const c of byModel.get(model)?.keys() ?? []) set.add(c);
  return [...set].sort((a, b) => a - b);
}

/** The MLServer setting (parallel workers) with the best throughput at the highest load, per model. */
function bestMlserver(model: string): string | undefined {
  const cs = concurrencies(model);
  const top = cs[cs.length - 1];
  let best: string | undefined;
  let bestRps = -1;
  for (const peer of runs.keys()) {
    if (!peer.startsWith('mlserver-pw') || top === undefined) continue;
    const c = cell(peer, model, top);
    if (c && c.rps > bestRps) {
      bestRps = c.rps;
      best = peer;
    }
  }
  return best;
}

const fmtMs = (us: number): string => (us >= 100_000 ? (us / 1000).toFixed(0) : us >= 10_000 ? (us / 1000).toFixed(1) : (us / 1000).toFixed(2));
const fmtRps = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ratio = (a: number, b: number | undefined): string => (b && b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function tryCmd(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'n/a';
  }
}

/** Summary of the 1-minute load averages recorded as each server started, if run.sh kept them. */
function loadText(): string {
  const f = path.join(dir!, 'loadavg.tsv');
  if (!existsSync(f)) return '';
  const xs = readFileSync(f, 'utf8')
    .trim()
    .split('\n')
    .map((l) => Number(l.split('\t')[1]?.split(' ')[0]))
    .filter((v) => Number.isFinite(v));
  if (xs.length === 0) return '';
  return (
    ` The machine's 1-minute load average as servers started ranged from ${Math.min(...xs).toFixed(1)} to ` +
    `${Math.max(...xs).toFixed(1)} (median ${median(xs).toFixed(1)}) on ${os.cpus().length} cores.`
  );
}

const lines: string[] = [];
lines.push('# Peer comparison results', '');
const rounds = new Set<string>();
for (const f of readdirSync(dir)) {
  const m = /__r(.+)\.json$/.exec(f);
  if (m) rounds.add(m[1]!);
}
lines.push(
  `Generated by ${commands
    .map((c) => {
      const i = c.indexOf(' (');
      return i > 0 ? `\`${c.slice(0, i)}\`${c.slice(i)}` : `\`${c}\``;
    })
    .join(' then ')}, ${rounds.size} round(s) in all, written ` +
    `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC. ` +
    'Each figure is the median over rounds (the req/s range shows the lowest and highest round); every server ran ' +
    'alone in its turn and was driven by `inferd bench` (closed loop, N requests in flight) from the same machine. ' +
    'See bench/peers/README.md for what each peer is and how it is configured.',
  '',
);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
lines.push(
  `Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB; Node ${process.version}; ` +
    `Python ${tryCmd('bench/peers/.venv/bin/python', ['-c', 'import platform; print(platform.python_version())'])}; ` +
    `onnxruntime (Python) ${tryCmd('bench/peers/.venv/bin/python', ['-c', 'import onnxruntime; print(onnxruntime.__version__)'])}; ` +
    `MLServer ${tryCmd('bench/peers/.venv/bin/python', ['-c', 'import mlserver; print(mlserver.__version__)'])}. ` +
    'The load generator shares the two cores with the server under test, as does everything else running on the machine at the time: ' +
    'compare ratios within this run rather than absolute figures across runs.' +
    loadText(),
  '',
);

for (const model of MODELS) {
  const cs = concurrencies(model);
  if (cs.length === 0) continue;
  const ml = bestMlserver(model);
  const peers = PEER_ORDER.flatMap((p) => (p === 'mlserver' ? (ml ? [ml] : []) : runs.has(p) ? [p] : []));
  lines.push(`## ${model}`, '');
  lines.push('| concurrency | server | req/s | req/s range | p50 ms | p99 ms | req/s vs inferd | p99 vs inferd | errors |');
  lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const c of cs) {
    const base = cell('inferd', model, c);
    for (const p of peers) {
      const x = cell(p, model, c);
      if (!x) continue;
      const label = p.startsWith('mlserver-pw') ? `${PEER_LABEL['mlserver']}, parallel_workers ${p.slice(11)}` : (PEER_LABEL[p] ?? p);
      lines.push(
        `| ${c} | ${p === 'inferd' ? '**inferd**' : label} | ${fmtRps(x.rps)} | ${fmtRps(x.rpsMin)}-${fmtRps(x.rpsMax)} | ${fmtMs(x.p50)} | ${fmtMs(x.p99)} | ` +
          `${p === 'inferd' ? '1.00x' : ratio(x.rps, base?.rps)} | ${p === 'inferd' ? '1.00x' : ratio(x.p99, base?.p99)} | ${x.errors}${x.stable ? '' : ' (unstable)'} |`,
      );
    }
  }
  lines.push('');
  const mlPeers = [...runs.keys()].filter((p) => p.startsWith('mlserver-pw')).sort();
  if (mlPeers.length > 1) {
    lines.push(
      `MLServer settings tried (median req/s at concurrency ${cs.join(' / ')}): ` +
        mlPeers
          .map((p) => `parallel_workers ${p.slice(11)}: ${cs.map((c) => (cell(p, model, c) ? fmtRps(cell(p, model, c)!.rps) : '-')).join(' / ')}`)
          .join('; ') +
        (ml ? `. The table shows parallel_workers ${ml.slice(11)}.` : '.'),
      '',
    );
  }
  const topC = cs[cs.length - 1]!;
  const limitTop = cell('http-limit', model, topC);
  const inferdAtTop = cell('inferd', model, topC);
  const nodeLimitTop = cell('http-limit-node', model, topC);
  const nobatchTop = cell('inferd-nobatch', model, topC);
  const pct = (a: Cell, b: Cell): string => `${((a.rps / b.rps) * 100).toFixed(0)}%`;
  if (inferdAtTop && (limitTop || nodeLimitTop)) {
    const of = [
      ...(nodeLimitTop ? [`${pct(inferdAtTop, nodeLimitTop)} of the node:http limit`] : []),
      ...(limitTop ? [`${pct(inferdAtTop, limitTop)} of the Fastify limit`] : []),
    ].join(' and ');
    const nobatch = nobatchTop
      ? ` With dynamic batching off it serves ${[...(nodeLimitTop ? [`${pct(nobatchTop, nodeLimitTop)} of the node:http limit`] : []), ...(limitTop ? [`${pct(nobatchTop, limitTop)} of the Fastify limit`] : [])].join(' and ')}.`
      : '';
    lines.push(
      `At concurrency ${topC} inferd serves ${of} in requests per second (same body parsed, no model run, constant answer).${nobatch}`,
      '',
    );
  }
  const rr = raw.get(model);
  if (rr && rr.length > 0) {
    const keys = new Map<string, RawPoint[]>();
    for (const r of rr) for (const p of r.points) keys.set(`${p.threads}/${p.batch}`, [...(keys.get(`${p.threads}/${p.batch}`) ?? []), p]);
    const pts = [...keys.values()].map((ps) => ({
      threads: ps[0]!.threads,
      batch: ps[0]!.batch,
      rowsPerSec: median(ps.map((p) => p.rowsPerSec)),
      p50RunUs: median(ps.map((p) => p.p50RunUs)),
    }));
    const best = pts.reduce((a, b) => (b.rowsPerSec > a.rowsPerSec ? b : a));
    const b1 = pts.filter((p) => p.batch === 1).reduce((a, b) => (b.p50RunUs < a.p50RunUs ? b : a));
    const top = cs[cs.length - 1]!;
    const inferdTop = cell('inferd', model, top);
    lines.push(
      `Compute limit (onnxruntime-node \`session.run()\` in a loop, no server): ${fmtRps(best.rowsPerSec)} rows/s at batch ${best.batch} ` +
        `with ${best.threads} intra-op thread(s); one batch-1 run takes ${fmtMs(b1.p50RunUs)} ms (p50).` +
        (inferdTop ? ` inferd at concurrency ${top} reaches ${((inferdTop.rps / best.rowsPerSec) * 100).toFixed(1)}% of that limit.` : ''),
      '',
    );
    lines.push('| intra-op threads | batch | rows/s | run p50 ms |', '| ---: | ---: | ---: | ---: |');
    for (const p of pts.sort((a, b) => a.threads - b.threads || a.batch - b.batch)) {
      lines.push(`| ${p.threads} | ${p.batch} | ${fmtRps(p.rowsPerSec)} | ${fmtMs(p.p50RunUs)} |`);
    }
    lines.push('');
  }
}

const notesFile = path.join(dir, 'notes.tsv');
if (existsSync(notesFile)) {
  const notes = [...new Set(readFileSync(notesFile, 'utf8').trim().split('\n').filter(Boolean))];
  if (notes.length > 0) {
    lines.push('## Notes from the run', '');
    for (const n of notes) {
      const [who, what] = n.split('\t');
      lines.push(`- ${who}: ${what}`);
    }
    lines.push('');
  }
}
if (!runs.has('inferd')) {
  lines.push('inferd itself was not part of this run (not selected, or see the notes): ratios are missing.', '');
}

writeFileSync(out, `${lines.join('\n').trimEnd()}\n`);
process.stderr.write(`wrote ${out}\n`);
