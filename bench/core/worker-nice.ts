/**
 * server.worker_nice against event-loop isolation and throughput: mobilenet_v2 (one 3x224x224
 * FP32 picture per request) over REST + JSON and REST + binary at concurrency 4, on servers
 * started with each nice value asked for, in alternating rounds. Per cell: `GET /health` p50/p99
 * idle and while the load runs (probed every 5 ms on its own keep-alive connection from a separate
 * process, so the load generator's event loop does not delay the probe), the throughput, and the
 * server's CPU per request (every thread; main thread).
 *
 *   npm run build && npx tsx bench/core/worker-nice.ts [--nice 0,5] [--rounds 3] [--seconds 6] [--protocols json,binary] [--concurrency 4]
 *
 * Each entry of --nice is a nice value, optionally followed by Node flags for that server joined
 * with '+': `--nice 0,0+--single-threaded-gc` compares the default with the same server whose
 * garbage collector uses no helper threads; other '+' parts of the form K=V are environment
 * variables of that server (`0+INFERD_SERVER__SINGLE_THREADED_GC=true`). The first entry is the
 * baseline of the paired ratios.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MOBILENET_CONFIG, syntheticImage } from '../protocols/inputs.js';
import { closedLoop, httpTransport, type Target } from '../protocols/load.js';
import { batchCounters, counterDelta, makeRepository, startServer, type RunningServer } from '../protocols/server.js';
import { encodeRequest, type Protocol } from '../protocols/wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ONNX = resolve(ROOT, '..', 'shared', 'models', 'mobilenet_v2', '1', 'model.onnx');
const { values: flags } = parseArgs({
  options: {
    nice: { type: 'string', default: '0,5' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    protocols: { type: 'string', default: 'json,binary' },
    concurrency: { type: 'string', default: '4' },
    probes: { type: 'string', default: '400' },
  },
});
interface Variant {
  label: string;
  nice: number;
  nodeArgs: string[];
  env: Record<string, string>;
}
const VARIANTS: Variant[] = flags.nice!.split(',').map((entry) => {
  const [nice, ...extra] = entry.split('+');
  const nodeArgs = extra.filter((a) => a.startsWith('-'));
  const env = Object.fromEntries(extra.filter((a) => !a.startsWith('-')).map((kv) => kv.split('=', 2) as [string, string]));
  return { label: `nice ${nice}${extra.length > 0 ? ` ${extra.join(' ')}` : ''}`, nice: Number(nice), nodeArgs, env };
});
const ROUNDS = Number(flags.rounds);
const SECONDS = Number(flags.seconds);
const PROTOCOLS = flags.protocols!.split(',') as Protocol[];
const CONCURRENCY = Number(flags.concurrency);
const PROBES = Number(flags.probes);

const log = (m: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

/** `count` sequential GET /health, 5 ms apart, from a separate process; latencies in ms. */
function probe(port: number, count: number): Promise<number[]> {
  const code = `
const http = require('node:http');
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
(async () => {
  const out = [];
  for (let i = 0; i < ${count}; i++) {
    const t = performance.now();
    await new Promise((res, rej) => http.get({ host: '127.0.0.1', port: ${port}, path: '/health', agent }, (r) => { r.resume(); r.on('end', res); }).on('error', rej));
    out.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.stdout.write(JSON.stringify(out));
  agent.destroy();
})();`;
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (c) => (c === 0 ? res(JSON.parse(out) as number[]) : rej(new Error(`probe exited with ${c}`))));
  });
}

interface Sample {
  idleP50: number;
  idleP99: number;
  busyP50: number;
  busyP99: number;
  rps: number;
  cpuMs: number;
  mainMs: number;
  load1: number;
}

const image = syntheticImage(3 * 224 * 224);
async function cell(server: RunningServer, protocol: Protocol): Promise<Sample> {
  const idle = await probe(server.httpPort, PROBES);
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const transport = httpTransport(target, '/v2/models/mobilenet_v2/infer', encodeRequest(protocol, 'mobilenet_v2', { name: 'input', shape: [1, 3, 224, 224], values: image }), CONCURRENCY);
  const snapshot = async () => ({ cpu: server.cpu(), counters: await batchCounters(server.httpPort, 'mobilenet_v2') });
  // The probe starts with the load's measured window and runs inside it.
  let busy: Promise<number[]> | undefined;
  const loaded = closedLoop(transport, CONCURRENCY, 1000, SECONDS * 1000, () => {
    busy ??= probe(server.httpPort, PROBES);
    return snapshot();
  });
  const { result, before, after } = await loaded;
  transport.close();
  const busyLatencies = await busy!;
  if (result.errors > 0) throw new Error(`${protocol}: ${result.errors} errors, first: ${result.firstError}`);
  const n = counterDelta(before.counters, after.counters).inferences;
  return {
    idleP50: pct(idle, 50),
    idleP99: pct(idle, 99),
    busyP50: pct(busyLatencies, 50),
    busyP99: pct(busyLatencies, 99),
    rps: result.throughput,
    cpuMs: (after.cpu.totalMs - before.cpu.totalMs) / n,
    mainMs: (after.cpu.mainMs - before.cpu.mainMs) / n,
    load1: loadavg()[0]!,
  };
}

const work = mkdtempSync(join(tmpdir(), 'inferd-nice-'));
const repo = makeRepository(work, [{ name: 'mobilenet_v2', onnx: ONNX, config: MOBILENET_CONFIG }]);
const servers = new Map<string, RunningServer>();
for (const [i, v] of VARIANTS.entries()) {
  servers.set(v.label, await startServer({ root: ROOT, repository: repo, nodeArgs: v.nodeArgs, logFile: join(work, `server-${i}.log`), readyModels: ['mobilenet_v2'], env: { INFERD_LOGGING__ACCESS_LOG: 'false', INFERD_SERVER__WORKER_NICE: String(v.nice), ...v.env } }));
}
const samples = new Map<string, Sample[]>();
const loads = [loadavg()[0]!];
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const protocol of PROTOCOLS) {
      const order = round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
      for (const v of order) {
        const s = await cell(servers.get(v.label)!, protocol);
        const key = `${protocol} ${v.label}`;
        (samples.get(key) ?? samples.set(key, []).get(key)!).push(s);
        log(`round ${round + 1} ${key}: /health idle p99 ${f(s.idleP99, 2)} busy p50 ${f(s.busyP50, 2)} p99 ${f(s.busyP99, 2)} ms; ${f(s.rps)} req/s, cpu ${f(s.cpuMs, 2)} / main ${f(s.mainMs, 2)} ms/req, load ${f(s.load1, 2)}`);
      }
      loads.push(loadavg()[0]!);
    }
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
}

console.log(`\n${ROUNDS} rounds of ${SECONDS} s per cell, concurrency ${CONCURRENCY}, ${PROBES} probes each; load average ${f(Math.min(...loads), 2)}-${f(Math.max(...loads), 2)}\n`);
console.log('| cell | idle p50 / p99 ms | saturated p50 / p99 ms | p99 saturated / idle | req/s | server CPU ms/req | main thread ms/req |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const [key, list] of samples) {
  const m = (k: keyof Sample) => median(list.map((s) => s[k]));
  console.log(`| ${key} | ${f(m('idleP50'), 2)} / ${f(m('idleP99'), 2)} | ${f(m('busyP50'), 2)} / ${f(m('busyP99'), 2)} | ${f(median(list.map((s) => s.busyP99 / s.idleP99)), 2)}x | ${f(m('rps'))} | ${f(m('cpuMs'), 2)} | ${f(m('mainMs'), 2)} |`);
}
// Paired per-round ratios against the first nice value listed (same machine load).
const [base, ...others] = VARIANTS;
for (const protocol of PROTOCOLS) {
  const A = samples.get(`${protocol} ${base!.label}`)!;
  for (const v of others) {
    const B = samples.get(`${protocol} ${v.label}`)!;
    const rps = B.map((s, i) => s.rps / A[i]!.rps);
    const p99 = B.map((s, i) => s.busyP99 / A[i]!.busyP99);
    console.log(`\n${protocol}, ${v.label} / ${base!.label} per round: req/s ${rps.map((r) => f(r, 2)).join(', ')} (median ${f(median(rps), 2)}); saturated /health p99 ${p99.map((r) => f(r, 2)).join(', ')} (median ${f(median(p99), 2)})`);
  }
}
