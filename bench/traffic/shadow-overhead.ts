/**
 * What a 100% shadow costs the callers: breast_cancer version 1 serves, a copy of it as version 2
 * receives every request as a shadow. Requests arrive at a fixed rate (open loop, as real
 * traffic does; a closed loop at saturation would measure capacity, which a shadow that doubles
 * the compute must halve) and go through the routing policy into the real data plane (worker
 * threads, batcher). The same load runs with the shadow off and on, alternating, and the
 * callers' p50/p99 are compared within the run.
 *
 * Four settings alternate in every round: no shadow, the shadow as configured by default
 * (mirrored requests gathered for 20 ms and run as one batch, its worker threads at nice 10), the
 * same with the shadow's workers at normal priority (nice 0), and the shadow run a request at a
 * time (batch_window 0, nice 10). The summary gives the median over rounds of each p99 ratio.
 *
 *   npx tsx bench/traffic/shadow-overhead.ts [--seconds 4] [--rate 500] [--rounds 2]
 */
import { loadavg } from 'node:os';
import { PerformanceObserver, performance as perf } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { InferenceRequest, RequestContext } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { runOnPlane } from '../../src/routing/plane.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { InferdServer } from '../../src/server/index.js';
import { makeRepository } from '../../test/support/server.js';
import { EXAMPLES } from '../../test/support/paths.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rate: { type: 'string', default: '500' }, rounds: { type: 'string', default: '2' } } });
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
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });

async function measure(shadowPercent: number, batchWindow?: string, nice?: number): Promise<Result> {
  const shadow =
    shadowPercent > 0
      ? { shadow: { version: 2, percent: shadowPercent, queue_size: 4096, ...(batchWindow !== undefined ? { batch_window: batchWindow } : {}), ...(nice !== undefined ? { nice } : {}) } }
      : {};
  // The shadow version's priority as the server sets it; a change (new workers when raised) completes before the load starts.
  const priorityChanges: Array<Promise<void>> = [];
  const traffic = await TrafficService.open(
    new Map([['breast_cancer', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, ...shadow }, 'breast_cancer')]]),
    { runOnVersion: next, versionNice: (model, version, n) => priorityChanges.push(server.manager.setNice(model, version, n)) },
  );
  await new Promise((r) => setImmediate(r));
  await Promise.all(priorityChanges);
  const callers = [process.pid, ...(await workerThreads('1'))];
  const shadows = await workerThreads('2');
  const policy = routingPolicy(traffic);
  const latencies: number[] = [];
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
      pending.push(policy.infer!(ctx, request(), next).then(() => void latencies.push(performance.now() - t)));
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
  // Mirrored work still queued belongs to this measurement: let it finish before the next one.
  for (let i = 0; i < 200 && (traffic.view('breast_cancer')!.shadow?.queued ?? 0) + (traffic.view('breast_cancer')!.shadow?.running ?? 0) > 0; i++) await new Promise((r) => setTimeout(r, 10));
  const stats = traffic.view('breast_cancer')!.shadow;
  await traffic.close();
  await server.plane.whenIdle();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
  return { p50: q(50), p99: q(99), n: latencies.length, mirrored: stats?.mirrored ?? 0, dropped: stats?.dropped ?? 0, completed: stats?.completed ?? 0, elu, cpuUsPerRequest: (cpu.user + cpu.system) / latencies.length, gcMsPerSecond: gcPerSecond, callersWaitUs: callersWait / 1000 / latencies.length, shadowWaitUs: shadowWait / 1000 / latencies.length };
}

await measure(0); // warm-up
await measure(100);
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
  const order = [0, 1, 2, 3].map((k) => (k + r) % 4);
  const results: Result[] = [];
  for (const k of order) results[k] = k === 0 ? await measure(0) : k === 1 ? await measure(100) : k === 2 ? await measure(100, undefined, 0) : await measure(100, '0ms');
  const [off, batched, normal, single] = results as [Result, Result, Result, Result];
  profile.push(`| ${r + 1} | ${cost(off)} | ${cost(batched)} | ${cost(normal)} | ${cost(single)} |`);
  batchedRatios.push(batched.p99 / off.p99);
  normalRatios.push(normal.p99 / off.p99);
  singleRatios.push(single.p99 / off.p99);
  const shadowCells = (x: Result) => `${cell(x)} | ${x.completed} / ${x.dropped} | ${(x.p99 / off.p99).toFixed(2)}`;
  rows.push(`| ${r + 1} | ${cell(off)} | ${shadowCells(batched)} | ${shadowCells(normal)} | ${shadowCells(single)} |`);
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
console.log(`shadow overhead: breast_cancer, ${rate} requests/s for ${seconds} s per measurement, ${rounds} rounds; load average ${loads.map((l) => l.toFixed(1)).join(', ')} at the rounds' start\n`);
console.log(
  '| round | off p50 / p99 ms | batched p50 / p99 ms | completed / dropped | p99 ratio | batched, nice 0: p50 / p99 ms | completed / dropped | p99 ratio | single p50 / p99 ms | completed / dropped | p99 ratio |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
console.log(
  '\nwhere the time goes: event-loop busy / process CPU µs per caller request (all threads) / GC ms per second / run-queue wait µs per caller request of the callers\' threads / of the shadow\'s workers\n',
);
console.log('| round | off | batched | batched, nice 0 | one at a time |');
console.log('|---|---|---|---|---|');
for (const r of profile) console.log(r);
console.log(
  `\nmedian p99 ratio: batched ${median(batchedRatios).toFixed(2)}, batched at nice 0 ${median(normalRatios).toFixed(2)}, one at a time ${median(singleRatios).toFixed(2)}; load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} at the end`,
);
await server.shutdown(10_000);
await rm(repo, { recursive: true, force: true });
