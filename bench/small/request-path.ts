/**
 * What one small REST request costs the server's main thread: CPU microseconds and kilobytes
 * allocated on its heap, through the whole path (HTTP parse → JSON decode → pipeline →
 * scheduler → worker answer → encode → write). These two figures barely move with the load
 * other work puts on the machine, unlike throughput, so progress shows on a busy machine.
 *
 *   node --import tsx bench/small/request-path.ts [--requests 20000] [--rounds 3]
 *        [--concurrency 64] [--batching on|off] [--base /path/to/other/built/checkout]
 *        [--cpu-prof DIR] [--heap-prof FILE] [--head-node-flags=--max-semi-space-size=64]
 *
 * Each round starts `inferd serve` of this checkout (and of `--base`, in alternating order)
 * with breast_cancer, warms it up, then sends `--requests` requests from `--concurrency`
 * keep-alive connections of this process. The server's main thread CPU is read from
 * /proc/<pid>/task/<pid>/stat (all threads from /proc/<pid>/stat); its allocation is the growth
 * of the main heap plus what each garbage collection in between freed (v8.GCProfiler, in a
 * module the server is started with, answering over the IPC channel). Worker threads have heaps
 * of their own and are not counted in the kilobytes. `--cpu-prof` writes a CPU profile of the
 * first round's server (main thread); `--heap-prof` a sampling profile of what its main thread
 * allocated during the measured requests, collected objects included (the kilobytes then carry
 * the profiler's own cost).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort } from '../../test/support/ports.js';
import { breastCancerRepository } from './repository.js';
import { serverNodeFlags } from '../support/node-flags.js';

const here = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '5000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '64' },
    batching: { type: 'string', default: 'on' },
    base: { type: 'string' },
    // Node flags for the head side's server only (e.g. '--max-semi-space-size=64'); with
    // `--base` naming this same checkout, an A/B of the flags alone.
    'head-node-flags': { type: 'string', default: '' },
    'cpu-prof': { type: 'string' },
    'heap-prof': { type: 'string' },
    limit: { type: 'boolean', default: false },
    models: { type: 'string', default: resolve(here, '..', 'shared', 'models') },
  },
});
const requests = Number(values.requests);
const concurrency = Number(values.concurrency);
const batching = values.batching !== 'off';

const work = mkdtempSync(join(tmpdir(), 'inferd-request-path-'));


/**
 * Loaded into the server with --import: on 'start' it notes the heap and starts a GC profile;
 * on 'stop' it answers with the bytes allocated since (growth of the used heap plus what every
 * collection in between freed) and the collections' count and time.
 */
const PROBE = `
import v8 from 'node:v8';
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
let profiler, usedAtStart, session;
const heapProfile = process.env.BENCH_HEAP_PROFILE;
const post = (method, params) => new Promise((res, rej) => session.post(method, params, (e, r) => (e ? rej(e) : res(r))));
process.channel?.unref();
process.on('message', async (m) => {
  if (m === 'start') {
    if (heapProfile) {
      session = new Session();
      session.connect();
      await post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    }
    profiler = new v8.GCProfiler();
    profiler.start();
    usedAtStart = v8.getHeapStatistics().used_heap_size;
    process.send({ started: true });
  } else if (m === 'stop') {
    if (heapProfile) writeFileSync(heapProfile, JSON.stringify((await post('HeapProfiler.stopSampling')).profile));
    const used = v8.getHeapStatistics().used_heap_size;
    const { statistics } = profiler.stop();
    let freed = 0, gcMs = 0, scavenges = 0;
    for (const s of statistics) {
      freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
      gcMs += s.cost / 1000;
      if (s.gcType === 'Scavenge') scavenges++;
    }
    process.send({ allocated: used - usedAtStart + freed, gcs: statistics.length, scavenges, gcMs });
  }
});
`;
const probe = join(work, 'probe.mjs');
writeFileSync(probe, PROBE);

interface Side {
  label: string;
  /** A built checkout whose `inferd serve` answers, or none for the node:http limit. */
  checkout?: string;
}
const sides: Side[] = [{ label: 'head', checkout: here }];
if (values.base) sides.push({ label: 'base', checkout: resolve(values.base) });
// The node:http limit of bench/peers/http-limit.ts: reads the body, JSON.parse, a constant answer.
if (values.limit) sides.push({ label: 'limit' });

const repo = breastCancerRepository(join(work, 'models'), values.models, batching);

async function start(side: Side, profileDir?: string, heapProfile?: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const grpc = await freePort();
  const nodeFlags = side.label === 'head' ? values['head-node-flags'].split(' ').filter((f) => f !== '') : [];
  const flags = [...(side.checkout ? serverNodeFlags(side.checkout) : []), ...nodeFlags, '--import', probe, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])];
  const args = side.checkout
    ? [resolve(side.checkout, 'bin', 'inferd.js'), 'serve', '--model-repository', repo, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', String(grpc), '--log-level', 'warn']
    : ['--import', 'tsx', resolve(here, 'bench', 'peers', 'http-limit.ts'), '--plain', '--port', String(port)];
  const child = spawn(process.execPath, [...flags, ...args], {
    cwd: here,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, ...(heapProfile ? { BENCH_HEAP_PROFILE: heapProfile } : {}) },
  });
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/${side.checkout ? 'health/ready' : 'v2/health/ready'}`)).status === 200) return { child, port };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`${side.label}: the server exited with ${child.exitCode}`);
    if (Date.now() - started > 120_000) throw new Error(`${side.label}: the server did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Eight distinct bodies of one 30-feature row, as `inferd bench` sends them. */
const bodies = Array.from({ length: 8 }, (_, k) =>
  Buffer.from(JSON.stringify({ inputs: [{ name: 'features', shape: [1, 30], datatype: 'FP32', data: Array.from({ length: 30 }, (_, i) => Math.fround(((i * 37 + k * 11) % 97) / 7.3)) }] })),
);

/** Sends `count` requests from `concurrency` loops; every answer must be a 200. */
function drive(port: number, count: number): Promise<number> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  let sent = 0;
  const started = performance.now();
  const loop = (): Promise<void> =>
    new Promise((res, rej) => {
      const next = (): void => {
        if (sent >= count) return res();
        const body = bodies[sent++ % bodies.length]!;
        const req = httpRequest(
          { agent, host: '127.0.0.1', port, method: 'POST', path: '/v2/models/breast_cancer/infer', headers: { 'content-type': 'application/json', 'content-length': body.length } },
          (r) => {
            if (r.statusCode !== 200) return rej(new Error(`status ${r.statusCode}`));
            r.on('data', () => {});
            r.on('end', next);
          },
        );
        req.on('error', rej);
        req.end(body);
      };
      next();
    });
  return Promise.all(Array.from({ length: concurrency }, loop)).then(() => {
    agent.destroy();
    return count / ((performance.now() - started) / 1000);
  });
}

/** CPU seconds of a thread (tid) or, with tid = pid under /proc/pid/stat, the whole process. */
function cpuSeconds(path: string): number {
  const fields = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ 100)
}

/** Rows the model ran and runs it made so far (statistics extension). */
async function counts(port: number, side: Side): Promise<{ rows: number; runs: number }> {
  if (!side.checkout) return { rows: Number.NaN, runs: Number.NaN };
  const r = (await (await fetch(`http://127.0.0.1:${port}/v2/models/breast_cancer/stats`)).json()) as { model_stats: Array<{ inference_count: number; execution_count: number }> };
  return { rows: r.model_stats[0]!.inference_count, runs: r.model_stats[0]!.execution_count };
}

interface Probe {
  allocated: number;
  gcs: number;
  scavenges: number;
  gcMs: number;
}
const ask = (child: ChildProcess, message: 'start' | 'stop'): Promise<Probe> =>
  new Promise((res) => {
    child.once('message', (m) => res(m as Probe));
    child.send(message);
  });

interface Sample {
  mainUs: number;
  allUs: number;
  kb: number;
  rps: number;
  gcMsPer1k: number;
  rowsPerRun: number;
}
const samples = new Map<string, Sample[]>();
const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const rounds = Number(values.rounds);
for (let round = 0; round < rounds; round++) {
  for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
    const profileDir = values['cpu-prof'] && side.label === 'head' && round === 0 ? resolve(values['cpu-prof']) : undefined;
    const heapProfile = values['heap-prof'] && side.label === 'head' && round === 0 ? resolve(values['heap-prof']) : undefined;
    const { child, port } = await start(side, profileDir, heapProfile);
    try {
      await drive(port, Number(values.warmup));
      const pid = child.pid!;
      const c0 = await counts(port, side);
      await ask(child, 'start');
      const main0 = cpuSeconds(`/proc/${pid}/task/${pid}/stat`);
      const all0 = cpuSeconds(`/proc/${pid}/stat`);
      const rps = await drive(port, requests);
      const main1 = cpuSeconds(`/proc/${pid}/task/${pid}/stat`);
      const all1 = cpuSeconds(`/proc/${pid}/stat`);
      const p = await ask(child, 'stop');
      const c1 = await counts(port, side);
      const s: Sample = {
        mainUs: ((main1 - main0) / requests) * 1e6,
        allUs: ((all1 - all0) / requests) * 1e6,
        kb: p.allocated / requests / 1024,
        rps,
        gcMsPer1k: (p.gcMs / requests) * 1000,
        rowsPerRun: (c1.rows - c0.rows) / (c1.runs - c0.runs),
      };
      (samples.get(side.label) ?? samples.set(side.label, []).get(side.label)!).push(s);
      console.error(
        `round ${round + 1} ${side.label}: main thread ${s.mainUs.toFixed(1)} us/req, all threads ${s.allUs.toFixed(1)} us/req, ${s.kb.toFixed(2)} KB/req, ${p.scavenges} scavenges ${p.gcMs.toFixed(0)} ms GC, ${s.rowsPerRun.toFixed(1)} rows per run, ${Math.round(rps)} req/s`,
      );
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  }
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`breast_cancer over REST/JSON, batching ${batching ? 'on' : 'off'}, c=${concurrency}, ${requests} requests x ${rounds} rounds; load average at the end ${load}`);
console.log('side   main-thread us/req   all-threads us/req   KB/req (main heap)   GC ms per 1k req   rows per run   req/s (noisy)');
const rows = new Map<string, Record<keyof Sample, number>>();
for (const [label, xs] of samples) {
  const m = { mainUs: median(xs.map((x) => x.mainUs)), allUs: median(xs.map((x) => x.allUs)), kb: median(xs.map((x) => x.kb)), rps: median(xs.map((x) => x.rps)), gcMsPer1k: median(xs.map((x) => x.gcMsPer1k)), rowsPerRun: median(xs.map((x) => x.rowsPerRun)) };
  rows.set(label, m);
  console.log(`${label.padEnd(6)} ${m.mainUs.toFixed(1).padStart(19)} ${m.allUs.toFixed(1).padStart(20)} ${m.kb.toFixed(2).padStart(20)} ${m.gcMsPer1k.toFixed(2).padStart(18)} ${m.rowsPerRun.toFixed(1).padStart(14)} ${Math.round(m.rps).toString().padStart(15)}`);
}
const head = rows.get('head');
const base = rows.get('base');
if (head && base) {
  console.log(`head / base: main thread CPU ${(head.mainUs / base.mainUs).toFixed(2)}, all threads ${(head.allUs / base.allUs).toFixed(2)}, KB ${(head.kb / base.kb).toFixed(2)}, req/s ${(head.rps / base.rps).toFixed(2)}`);
}
