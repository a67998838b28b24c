/**
 * Where a large request's CPU goes inside the server: mobilenet_v2 (one 3x224x224 FP32 picture)
 * over one protocol at one concurrency, with the CPU of every server thread read from
 * /proc/<pid>/task/<tid>/stat before and after the window, grouped by the thread's name, per
 * request; the load generator's own CPU per request beside it.
 *
 *   npm run build && npx tsx bench/core/thread-cpu.ts [--protocol binary] [--concurrency 1] [--seconds 5] [--warmup 10] [--env K=V,...]  [--spin] [--cpu-prof-dir DIR] [--root DIR] [--node-args '--trace-gc ...']
 *
 * --warmup (seconds of load before the window) defaults to 10: the main thread's code runs
 * unoptimised for its first seconds at these rates (1.0 ms per binary request after 1 s of
 * load, 0.6 ms after 40 s), so a short warm-up measures V8's tiering more than the server.
 *
 * --root serves from another built checkout. *
 * --spin serves the model with `onnx.allow_spinning: true` (onnxruntime's own default).
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MOBILENET_CONFIG, syntheticImage } from '../protocols/inputs.js';
import { closedLoop, grpcTransport, httpTransport, type Target } from '../protocols/load.js';
import { batchCounters, counterDelta, makeRepository, startServer } from '../protocols/server.js';
import { encodeRequest, modelInferMethod, type Protocol } from '../protocols/wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ONNX = resolve(ROOT, '..', 'shared', 'models', 'mobilenet_v2', '1', 'model.onnx');
const { values: flags } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'binary' },
    concurrency: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '10' },
    env: { type: 'string', default: '' },
    spin: { type: 'boolean', default: false },
    root: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    'cpu-prof-dir': { type: 'string' },
  },
});

/** tid → [name, cpu ms] of every thread of `pid`. */
function threads(pid: number): Map<number, [string, number]> {
  const out = new Map<number, [string, number]>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      // Time on the CPU in nanoseconds (schedstat), finer than stat's 10 ms ticks.
      const onCpuNs = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(Number(tid), [Number(tid) === pid ? 'main' : name, onCpuNs / 1e6]);
    } catch {
      // the thread ended
    }
  }
  return out;
}

/** The main thread's user and system CPU, ms (10 ms ticks): system time is mostly socket reads and writes. */
function mainUserSystem(pid: number): [number, number] {
  const text = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return [Number(fields[11]) * 10, Number(fields[12]) * 10];
}

const env = Object.fromEntries(flags.env!.split(',').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));
const work = mkdtempSync(join(tmpdir(), 'inferd-threads-'));
const repo = makeRepository(work, [{ name: 'mobilenet_v2', onnx: ONNX, config: flags.spin ? MOBILENET_CONFIG.replace('inter_op_threads: 1', 'inter_op_threads: 1\n  allow_spinning: true') : MOBILENET_CONFIG }]);
const server = await startServer({ root: flags.root ? resolve(flags.root) : ROOT, repository: repo, logFile: join(work, 'server.log'), readyModels: ['mobilenet_v2'], nodeArgs: [...(flags['cpu-prof-dir'] ? ['--cpu-prof', '--cpu-prof-dir', flags['cpu-prof-dir']] : []), ...flags['node-args']!.split(' ').filter(Boolean)], env: { INFERD_LOGGING__ACCESS_LOG: 'false', ...env } });
const protocol = flags.protocol as Protocol;
const concurrency = Number(flags.concurrency);
try {
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const request = encodeRequest(protocol, 'mobilenet_v2', { name: 'input', shape: [1, 3, 224, 224], values: syntheticImage(3 * 224 * 224) });
  const transport = protocol === 'grpc' ? grpcTransport(target, modelInferMethod(), request) : httpTransport(target, '/v2/models/mobilenet_v2/infer', request, concurrency);
  const snapshot = async () => ({ threads: threads(server.pid), main: mainUserSystem(server.pid), counters: await batchCounters(server.httpPort, 'mobilenet_v2') });
  const { result, before, after } = await closedLoop(transport, concurrency, Number(flags.warmup) * 1000, Number(flags.seconds) * 1000, snapshot);
  transport.close();
  const n = counterDelta(before.counters, after.counters).inferences;
  const groups = new Map<string, { ms: number; threads: number }>();
  for (const [tid, [name, ms]] of after.threads) {
    const delta = ms - (before.threads.get(tid)?.[1] ?? 0);
    const g = groups.get(name) ?? { ms: 0, threads: 0 };
    g.ms += delta;
    g.threads++;
    groups.set(name, g);
  }
  const total = [...groups.values()].reduce((s, g) => s + g.ms, 0);
  console.log(`${flags.root ?? '.'} ${protocol} c=${concurrency}${flags.spin ? ' spinning' : ''}${flags.env ? ` ${flags.env}` : ''}: ${result.throughput.toFixed(1)} req/s, ${n} requests, p50 ${result.p50Ms.toFixed(2)} ms, server ${(total / n).toFixed(2)} ms CPU/req, main ${(((after.threads.get(server.pid)?.[1] ?? 0) - (before.threads.get(server.pid)?.[1] ?? 0)) / n).toFixed(3)} ms/req, client ${result.clientCpuMsPerRequest.toFixed(2)} ms CPU/req, load ${loadavg()[0]!.toFixed(2)}`);
  console.log(`  main thread user ${((after.main[0] - before.main[0]) / n).toFixed(3)} / system ${((after.main[1] - before.main[1]) / n).toFixed(3)} ms/req`);
  for (const [name, g] of [...groups].sort((a, b) => b[1].ms - a[1].ms)) {
    if (g.ms > 0) console.log(`  ${name.padEnd(18)} ${String(g.threads).padStart(3)} threads  ${(g.ms / n).toFixed(3)} ms/req`);
  }
  // Thread by thread (the model's worker, onnxruntime's pool and libuv's all carry the same name).
  const each = [...after.threads].map(([tid, [name, ms]]) => [tid, name, ms - (before.threads.get(tid)?.[1] ?? 0)] as const).filter((t) => t[2] > 0);
  for (const [tid, name, ms] of each.sort((a, b) => b[2] - a[2])) console.log(`    ${String(tid).padStart(8)} ${name.padEnd(16)} ${(ms / n).toFixed(3)} ms/req`);
} finally {
  await server.stop();
}
