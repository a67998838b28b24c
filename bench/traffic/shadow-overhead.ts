/**
 * What a 100% shadow costs the callers: breast_cancer version 1 serves, a copy of it as version 2
 * receives every request as a shadow. Requests arrive at a fixed rate (open loop, as real
 * traffic does; a closed loop at saturation would measure capacity, which a shadow that doubles
 * the compute must halve) and go through the routing policy into the real data plane (worker
 * threads, batcher). The same load runs with the shadow off and on, alternating, and the
 * callers' p50/p99 are compared within the run.
 *
 * Four settings alternate in every round: no shadow; the shadow as the server runs it (mirrored
 * requests gathered for 20 ms and posted as one window to the shadow version's worker threads,
 * which run and compare it there, at nice 10); the same window called through the data plane
 * instead (one call per window and its answer split and compared on the event loop, what inferd
 * did before); and the shadow posted a request at a time (batch_window 0). The summary gives
 * the median over rounds of each p99 ratio. Each slow caller request (above the round's p99
 * without a shadow) is attributed to what overlapped it: a scavenge or mark-compact collection,
 * a shadow window's hand-off (the post, or the data plane call), a shadow answer's arrival, the
 * shadow's run in its worker, or none of these. `--settings off,batched` runs fewer settings.
 *
 *   npx tsx bench/traffic/shadow-overhead.ts [--seconds 4] [--rate 500] [--rounds 2]
 */
import { loadavg } from 'node:os';
import { PerformanceObserver, constants, performance as perf } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BroadcastChannel } from 'node:worker_threads';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { InferenceRequest, RequestContext } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { mirrorTargetOf, runOnPlane } from '../../src/routing/plane.js';
import type { RunOnVersion } from '../../src/routing/shadow.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { InferdServer } from '../../src/server/index.js';
import { makeRepository } from '../../test/support/server.js';
import { EXAMPLES } from '../../test/support/paths.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rate: { type: 'string', default: '500' }, rounds: { type: 'string', default: '2' }, settings: { type: 'string', default: 'off,batched,plane,single' } } });
/** Which of the four settings run (off always does: it is the reference). */
const settings = new Set(['off', ...values.settings.split(',')]);
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const rounds = Number(values.rounds);

const repo = await makeRepository({ breast_cancer: { copyFrom: path.join(EXAMPLES, 'breast_cancer') } });
await mkdir(path.join(repo, 'breast_cancer', '2'), { recursive: true });
await copyFile(path.join(repo, 'breast_cancer', '1', 'model.onnx'), path.join(repo, 'breast_cancer', '2', 'model.onnx'));
const { readFile, writeFile } = await import('node:fs/promises');
const configFile = path.join(repo, 'breast_cancer', 'config.yaml');
await writeFile(configFile, `${await readFile(configFile, 'utf8')}\nversion_policy: { all: true }\n`);

const config = loadConfig({ env: {}, overrides: { model_repository: repo, server: { host: '127.0.0.1', http_port: 0, grpc_port: -1 }, logging: { level: 'silent' } } });
const server = await InferdServer.start(config, pino({ level: 'silent' }));
const next = runOnPlane(server.plane);

const row = new Float32Array(30).map((_, i) => (i % 7) / 7);
const request = (): InferenceRequest => ({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: row.slice() }] });

interface Result {
  p50: number;
  p99: number;
  n: number;
  mirrored: number;
  dropped: number;
  completed: number;
  /** Share of the time the event loop was busy (the callers and the shadows share it). */
  elu: number;
  /** CPU of the whole process (event loop and worker threads) per caller request, µs. */
  cpuUsPerRequest: number;
  /** Time in garbage collection, ms per second. */
  gcMsPerSecond: number;
  /**
   * Time runnable but waiting for a core (the kernel's schedstat), µs per caller request: of the
   * callers' threads (the event loop and version 1's workers) and of the shadow's workers.
   */
  callersWaitUs: number;
  shadowWaitUs: number;
  /** Each request's start and end, and what ran meanwhile, for attribution against a threshold. */
  spans: Array<[number, number]>;
  gcs: typeof gcs;
  calls: typeof shadowCalls;
  wall: number;
}

/** Diagnostic: where in the shadow's cycle slow and all requests start (ms since the last shadow call's start), and percentiles. */
function phases(r: Result, threshold: number): void {
  const starts = r.calls.map((c) => c.start).sort((a, b) => a - b);
  const slowHist = new Array(25).fill(0);
  const allHist = new Array(25).fill(0);
  const sinceAnswer: number[] = [];
  for (const [t0, t1] of r.spans) {
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]! <= t0) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) continue;
    const bucket = Math.min(24, Math.floor(t0 - starts[found]!));
    allHist[bucket] += 1;
    if (t1 - t0 > threshold) {
      slowHist[bucket] += 1;
      const call = r.calls.find((c) => c.start === starts[found]);
      sinceAnswer.push(call === undefined ? NaN : t0 - call.answered);
    }
  }
  const sorted = r.spans.map(([a, b]) => b - a).sort((a, b) => a - b);
  const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(3);
  console.error(`threshold ${threshold.toFixed(3)} p90 ${q(90)} p95 ${q(95)} p98 ${q(98)} p99 ${q(99)} p99.5 ${q(99.5)}`);
  console.error(`slow by ms since shadow call start: ${slowHist.join(' ')}`);
  console.error(`all  by ms since shadow call start: ${allHist.join(' ')}`);
  console.error(`slow: ms since that call's answer: ${sinceAnswer.map((x) => x.toFixed(2)).join(' ')}`);
}

function attribute(r: Result, threshold: number): Attribution {
  const overlaps = (a0: number, a1: number, b0: number, b1: number) => a0 < b1 && b0 < a1;
  const a: Attribution = { slow: 0, scavenge: 0, markCompact: 0, handOff: 0, answer: 0, inFlightOnly: 0, nothing: 0, allScavenge: 0, allAnswer: 0, allHandOff: 0, handOffMedianMs: 0, handOffByChance: 0, scavengeByChance: 0, scavengesPerSecond: 0, scavengeMeanMs: 0, markCompactsPerSecond: 0 };
  for (const [t0, t1] of r.spans) {
    const scavenge = r.gcs.some((g) => g.minor && overlaps(t0, t1, g.start, g.end));
    const markCompact = r.gcs.some((g) => !g.minor && overlaps(t0, t1, g.start, g.end));
    const handOff = r.calls.some((c) => overlaps(t0, t1, c.start, c.handedOff));
    const answer = r.calls.some((c) => c.answered >= t0 && c.answered <= t1);
    const inFlight = r.calls.some((c) => overlaps(t0, t1, c.handedOff, c.answered));
    if (scavenge) a.allScavenge += 1;
    if (answer) a.allAnswer += 1;
    if (handOff) a.allHandOff += 1;
    if (t1 - t0 <= threshold) continue;
    a.slow += 1;
    if (scavenge) a.scavenge += 1;
    if (markCompact) a.markCompact += 1;
    if (handOff) a.handOff += 1;
    if (answer) a.answer += 1;
    if (inFlight && !handOff && !answer) a.inFlightOnly += 1;
    if (!scavenge && !markCompact && !handOff && !answer && !inFlight) a.nothing += 1;
  }
  a.allScavenge /= r.spans.length;
  a.allAnswer /= r.spans.length;
  a.allHandOff /= r.spans.length;
  const handOffs = r.calls.map((c) => c.handedOff - c.start).sort((x, y) => x - y);
  a.handOffMedianMs = handOffs.length === 0 ? 0 : handOffs[handOffs.length >> 1]!;
  const scavenges = r.gcs.filter((g) => g.minor);
  a.scavengesPerSecond = scavenges.length / r.wall;
  a.scavengeMeanMs = scavenges.reduce((t, g) => t + g.end - g.start, 0) / Math.max(1, scavenges.length);
  const handOffPerMs = r.calls.length / (r.wall * 1000);
  const handOffMeanMs = r.calls.reduce((t, c) => t + c.handedOff - c.start, 0) / Math.max(1, r.calls.length);
  const scavengesPerMs = scavenges.length / (r.wall * 1000);
  for (const [t0, t1] of r.spans) {
    if (t1 - t0 <= threshold) continue;
    a.handOffByChance += Math.min(1, (t1 - t0 + handOffMeanMs) * handOffPerMs);
    a.scavengeByChance += Math.min(1, (t1 - t0 + a.scavengeMeanMs) * scavengesPerMs);
  }
  a.markCompactsPerSecond = (r.gcs.length - scavenges.length) / r.wall;
  return a;
}

/** The worker threads' kernel ids of a version. */
async function workerThreads(version: string): Promise<number[]> {
  const v = server.manager.serving.versionsOf('breast_cancer').find((x) => x.version === version)!;
  return (await v.workerPriorities()).map((s) => s.tid);
}

/** Nanoseconds the threads spent runnable but not running (second field of /proc/<pid>/task/<tid>/schedstat). */
function runQueueWaitNs(tids: number[]): number {
  let total = 0;
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${process.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
    } catch {
      // not Linux, or the thread ended
    }
  }
  return total;
}

let gcMs = 0;
/** Every garbage collection: start and end on the performance clock, and whether it was a scavenge (minor). */
const gcs: Array<{ start: number; end: number; minor: boolean }> = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcMs += e.duration;
    const kind = ((e as PerformanceEntry & { detail?: { kind?: number } }).detail)?.kind;
    gcs.push({ start: e.startTime, end: e.startTime + e.duration, minor: kind === constants.NODE_PERFORMANCE_GC_MINOR });
  }
}).observe({ entryTypes: ['gc'] });

/** The shadow's calls through the data plane: the synchronous hand-off and the answer's arrival, on the performance clock. */
const shadowCalls: Array<{ start: number; handedOff: number; answered: number }> = [];
const shadowRun: RunOnVersion = (ctx, req) => {
  const call = { start: performance.now(), handedOff: 0, answered: Number.POSITIVE_INFINITY };
  const answer = next(ctx, req);
  call.handedOff = performance.now();
  shadowCalls.push(call);
  answer.then(
    () => void (call.answered = performance.now()),
    () => void (call.answered = performance.now()),
  );
  return answer;
};

// Windows posted to the shadow's worker threads: the hand-off is the post; no answer comes back.
const post = BroadcastChannel.prototype.postMessage;
BroadcastChannel.prototype.postMessage = function (this: BroadcastChannel, message: unknown) {
  const start = performance.now();
  post.call(this, message);
  const end = performance.now();
  shadowCalls.push({ start, handedOff: end, answered: end });
};

/**
 * What overlapped each caller request slower than `threshold` ms: a scavenge, a mark-compact
 * collection, a shadow batch's hand-off to the data plane, its answer arriving (split and
 * compared in the same turn), or nothing of these; and the same shares over all requests.
 */
interface Attribution {
  slow: number;
  scavenge: number;
  markCompact: number;
  handOff: number;
  answer: number;
  /** Overlapped a shadow batch only while it ran in its worker (not its hand-off nor its answer). */
  inFlightOnly: number;
  nothing: number;
  /** Share of all requests overlapping a scavenge / a shadow answer. */
  allScavenge: number;
  allAnswer: number;
  allHandOff: number;
  handOffMedianMs: number;
  /**
   * Slow requests expected to overlap a hand-off, a scavenge, by chance alone: events at the
   * measured rate and of the measured length, placed independently of the requests.
   */
  handOffByChance: number;
  scavengeByChance: number;
  scavengesPerSecond: number;
  scavengeMeanMs: number;
  markCompactsPerSecond: number;
}

async function measure(shadowPercent: number, batchWindow?: string, inWorkers = true): Promise<Result> {
  const shadow =
    shadowPercent > 0
      ? { shadow: { version: 2, percent: shadowPercent, queue_size: 4096, ...(batchWindow !== undefined ? { batch_window: batchWindow } : {}) } }
      : {};
  // The shadow version's priority as the server sets it; a change (new workers when raised) completes before the load starts.
  const priorityChanges: Array<Promise<void>> = [];
  const traffic = await TrafficService.open(
    new Map([['breast_cancer', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, ...shadow }, 'breast_cancer')]]),
    { runOnVersion: shadowRun, ...(inWorkers ? { mirrorTarget: (m: string, v: string) => mirrorTargetOf(server.manager, m, v) } : {}), versionNice: (model, version, n) => priorityChanges.push(server.manager.setNice(model, version, n)) },
  );
  await new Promise((r) => setImmediate(r));
  await Promise.all(priorityChanges);
  const callers = [process.pid, ...(await workerThreads('1'))];
  const shadows = await workerThreads('2');
  const policy = routingPolicy(traffic);
  const latencies: number[] = [];
  const spans: Array<[number, number]> = [];
  gcs.length = 0;
  shadowCalls.length = 0;
  const pending: Array<Promise<void>> = [];
  const start = performance.now();
  const elu0 = perf.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const gc0 = gcMs;
  const callersWait0 = runQueueWaitNs(callers);
  const shadowWait0 = runQueueWaitNs(shadows);
  const total = Math.round(rate * seconds);
  let sent = 0;
  // Every 2 ms, send the requests the schedule says are due: a fixed arrival rate.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      const ctx: RequestContext = { requestId: `b${sent}`, protocol: 'internal', model: 'breast_cancer', responseHeaders: {} };
      const t = performance.now();
      pending.push(
        policy.infer!(ctx, request(), next).then(() => {
          const end = performance.now();
          latencies.push(end - t);
          spans.push([t, end]);
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  const elu = perf.eventLoopUtilization(elu0).utilization;
  const cpu = process.cpuUsage(cpu0);
  const callersWait = runQueueWaitNs(callers) - callersWait0;
  const shadowWait = runQueueWaitNs(shadows) - shadowWait0;
  const wall = (performance.now() - start) / 1000;
  const gcPerSecond = (gcMs - gc0) / wall;
  // The observer's entries arrive on a later turn.
  await new Promise((r) => setImmediate(r));
  const measured = { gcs: gcs.filter((g) => g.start >= start), calls: shadowCalls.slice() };
  // Mirrored work still queued belongs to this measurement: let it finish before the next one.
  for (let i = 0; i < 200 && (traffic.view('breast_cancer')!.shadow?.queued ?? 0) + (traffic.view('breast_cancer')!.shadow?.running ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 10));
  const stats = traffic.view('breast_cancer')!.shadow;
  await traffic.close();
  await server.plane.whenIdle();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
  return { p50: q(50), p99: q(99), n: latencies.length, mirrored: stats?.mirrored ?? 0, dropped: stats?.dropped ?? 0, completed: stats?.completed ?? 0, elu, cpuUsPerRequest: (cpu.user + cpu.system) / latencies.length, gcMsPerSecond: gcPerSecond, callersWaitUs: callersWait / 1000 / latencies.length, shadowWaitUs: shadowWait / 1000 / latencies.length, spans, ...measured, wall };
}

await measure(0); // warm-up
await measure(100);
const SETTINGS = ['off', 'batched', 'plane', 'single'];
const attributions: string[] = [];
const rows: string[] = [];
const batchedRatios: number[] = [];
const normalRatios: number[] = [];
const singleRatios: number[] = [];
const loads: number[] = [];
const cell = (r: Result) => `${r.p50.toFixed(2)} / ${r.p99.toFixed(2)}`;
const profile: string[] = [];
const cost = (r: Result) =>
  `${(100 * r.elu).toFixed(1)}% / ${r.cpuUsPerRequest.toFixed(0)} / ${r.gcMsPerSecond.toFixed(1)} / ${r.callersWaitUs.toFixed(0)} / ${r.shadowWaitUs.toFixed(0)}`;
for (let r = 0; r < rounds; r++) {
  loads.push(loadavg()[0]!);
  // The order rotates so no setting always runs first in a round.
  const order = [0, 1, 2, 3].map((k) => (k + r) % 4).filter((k) => settings.has(SETTINGS[k]!));
  const results: Result[] = [];
  for (const k of order) results[k] = k === 0 ? await measure(0) : k === 1 ? await measure(100) : k === 2 ? await measure(100, undefined, false) : await measure(100, '0ms');
  const off = results[0]!;
  const [batched, normal, single] = [results[1], results[2], results[3]];
  if (process.env.SHADOW_PHASES !== undefined && results[1] !== undefined) phases(results[1], off.p99);
  for (const k of order) {
    const a = attribute(results[k]!, off.p99);
    attributions.push(
      `| ${r + 1} | ${SETTINGS[k]} | ${results[k]!.p99.toFixed(2)} | ${a.slow} | ${a.scavenge} (${a.scavengeByChance.toFixed(0)}) | ${a.markCompact} | ${a.handOff} (${a.handOffByChance.toFixed(0)}) | ${a.answer} | ${a.inFlightOnly} | ${a.nothing} | ${(100 * a.allScavenge).toFixed(1)}% | ${(100 * a.allAnswer).toFixed(1)}% | ${(100 * a.allHandOff).toFixed(1)}% | ${a.handOffMedianMs.toFixed(3)} | ${a.scavengesPerSecond.toFixed(1)} | ${a.scavengeMeanMs.toFixed(2)} | ${a.markCompactsPerSecond.toFixed(2)} |`,
    );
  }
  // A setting not run shows as such, and has no ratio in the medians.
  const costOf = (x: Result | undefined) => (x === undefined ? 'not run' : cost(x));
  profile.push(`| ${r + 1} | ${cost(off)} | ${costOf(batched)} | ${costOf(normal)} | ${costOf(single)} |`);
  if (batched !== undefined) batchedRatios.push(batched.p99 / off.p99);
  if (normal !== undefined) normalRatios.push(normal.p99 / off.p99);
  if (single !== undefined) singleRatios.push(single.p99 / off.p99);
  const shadowCells = (x: Result | undefined) => (x === undefined ? 'not run | | ' : `${cell(x)} | ${x.completed} / ${x.dropped} | ${(x.p99 / off.p99).toFixed(2)}`);
  rows.push(`| ${r + 1} | ${cell(off)} | ${shadowCells(batched)} | ${shadowCells(normal)} | ${shadowCells(single)} |`);
}
const median = (xs: number[]): string => {
  if (xs.length === 0) return 'not run';
  const s = [...xs].sort((a, b) => a - b);
  return (s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2).toFixed(2);
};
console.log(`shadow overhead: breast_cancer, ${rate} requests/s for ${seconds} s per measurement, ${rounds} rounds; load average ${loads.map((l) => l.toFixed(1)).join(', ')} at the rounds' start\n`);
console.log(
  '| round | off p50 / p99 ms | batched p50 / p99 ms | completed / dropped | p99 ratio | through the data plane: p50 / p99 ms | completed / dropped | p99 ratio | single p50 / p99 ms | completed / dropped | p99 ratio |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(
  '\nwhere the time goes: event-loop busy / process CPU µs per caller request (all threads) / GC ms per second / run-queue wait µs per caller request of the callers\' threads / of the shadow\'s workers\n',
);
console.log('| round | off | batched | through the data plane | one at a time |');
console.log('|---|---|---|---|---|');
for (const r of profile) console.log(r);
console.log(
  "\nattribution of the callers' requests slower than the round's p99 without a shadow: how many overlapped a scavenge, a mark-compact, a shadow batch's hand-off, a shadow answer's arrival, only a shadow batch running in its worker, none of these (in brackets: how many would overlap a scavenge, a hand-off, by chance alone, given the slow requests' durations and those events' rate and length); share of all requests overlapping a scavenge / a shadow answer; scavenges per second and their mean ms; mark-compacts per second\n",
);
console.log('| round | setting | p99 ms | slow | scavenge (by chance) | mark-compact | hand-off (by chance) | answer | in flight only | nothing | all: scavenge | all: answer | all: hand-off | hand-off median ms | scavenges/s | scavenge ms | mark-compacts/s |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const a of attributions) console.log(a);
console.log(
  `\nmedian p99 ratio: batched ${median(batchedRatios)}, batched through the data plane ${median(normalRatios)}, one at a time ${median(singleRatios)}; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} at the end`,
);
await server.shutdown(10_000);
await rm(repo, { recursive: true, force: true });
