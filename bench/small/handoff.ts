/**
 * The hand-off between the event loop and a worker thread, alone: a small request (30 floats)
 * goes to a worker that echoes it back. Three ways, in alternating rounds:
 *
 *   message   one piscina task per request (postMessage + Atomics.notify each way)
 *   group/N   N requests per piscina task, answered in one message (what the scheduler does
 *             without batching when requests wait for an instance)
 *   ring      a SharedArrayBuffer slot per request and Atomics.notify / Atomics.waitAsync, no
 *             structured clone
 *
 *   node --import tsx bench/small/handoff.ts [--requests 20000] [--rounds 3] [--inflight 32]
 *
 * Reports requests per second and process CPU (both threads) per request.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, inflight: { type: 'string', default: '32' } } });
const total = Number(values.requests);
const inflight = Number(values.inflight);
const ROW = 30;

const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
if (workerData && workerData.ring) {
  // Ring: slot i holds a state word (0 free, 1 request, 2 answer) and ROW floats.
  const { states, data, slots } = workerData.ring;
  const state = new Int32Array(states);
  const floats = new Float32Array(data);
  let seen = 0;
  for (;;) {
    Atomics.wait(state, slots, seen);
    seen = Atomics.load(state, slots);
    for (let i = 0; i < slots; i++) {
      if (Atomics.load(state, i) !== 1) continue;
      for (let k = 0; k < ${ROW}; k++) floats[i * ${ROW} + k] = floats[i * ${ROW} + k] + 1;
      Atomics.store(state, i, 2);
    }
    Atomics.add(state, slots + 1, 1);
    Atomics.notify(state, slots + 1);
  }
}
module.exports = (task) => task.kind === 'each' ? task.runs.map((r) => ({ data: r.data.map((v) => v + 1) })) : { data: task.data.map((v) => v + 1) };
`;

async function viaMessages(pool: Piscina, groupSize: number): Promise<void> {
  let sent = 0;
  const lane = async (): Promise<void> => {
    while (sent < total) {
      const n = Math.min(groupSize, total - sent);
      sent += n;
      if (groupSize === 1) {
        await pool.run({ kind: 'one', data: new Float32Array(ROW) });
      } else {
        await pool.run({ kind: 'each', runs: Array.from({ length: n }, () => ({ data: new Float32Array(ROW) })) });
      }
    }
  };
  // One hand-off in flight per instance, as the scheduler keeps it; `inflight` requests behind it.
  await lane();
}

/** Atomics.waitAsync (Node 16+), missing from the TypeScript lib this project targets. */
type WaitAsync = (array: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };

async function viaRing(): Promise<void> {
  const slots = inflight;
  const states = new SharedArrayBuffer(4 * (slots + 2));
  const data = new SharedArrayBuffer(4 * ROW * slots);
  const state = new Int32Array(states);
  const floats = new Float32Array(data);
  const worker = new Worker(workerSource, { eval: true, workerData: { ring: { states, data, slots } } });
  let done = 0;
  let answers = 0;
  while (done < total) {
    const n = Math.min(slots, total - done);
    for (let i = 0; i < n; i++) {
      floats.fill(0, i * ROW, (i + 1) * ROW);
      Atomics.store(state, i, 1);
    }
    Atomics.add(state, slots, 1);
    Atomics.notify(state, slots);
    // Wait on the event loop for the worker's answer, as a server's main thread must.
    const result = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(state, slots + 1, answers);
    if (result.async) await result.value;
    answers = Atomics.load(state, slots + 1);
    for (let i = 0; i < n; i++) Atomics.store(state, i, 0);
    done += n;
  }
  await worker.terminate();
}

const filename = join(mkdtempSync(join(tmpdir(), 'inferd-handoff-')), 'echo.cjs');
writeFileSync(filename, workerSource);
const modes: Array<{ name: string; run: () => Promise<void> }> = [];
const pools: Piscina[] = [];
for (const size of [1, 8, inflight]) {
  const pool = new Piscina({ filename, minThreads: 1, maxThreads: 1, idleTimeout: Number.MAX_SAFE_INTEGER });
  pools.push(pool);
  modes.push({ name: size === 1 ? 'message' : `group/${size}`, run: () => viaMessages(pool, size) });
}
modes.push({ name: `ring/${inflight}`, run: viaRing });

const results = new Map<string, Array<{ rps: number; cpuUs: number }>>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await mode.run();
    const wall = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const sample = { rps: (total / wall) * 1000, cpuUs: (cpu.user + cpu.system) / total };
    (results.get(mode.name) ?? results.set(mode.name, []).get(mode.name)!).push(sample);
  }
}
for (const pool of pools) await pool.destroy();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const load = (await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`${total} requests per round, ${values.rounds} rounds, load average ${load}`);
for (const [name, xs] of results) {
  console.log(`${name.padEnd(10)} ${Math.round(median(xs.map((x) => x.rps))).toString().padStart(8)} req/s  ${median(xs.map((x) => x.cpuUs)).toFixed(1).padStart(6)} us CPU per request`);
}
