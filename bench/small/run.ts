/**
 * Small requests (breast_cancer, 30 floats): inferd with and without batching against the HTTP
 * limits (node:http and Fastify servers that only parse the body and answer a constant), and the
 * server CPU one small call costs over REST/JSON and gRPC. Servers run one at a time in their own
 * process, in alternating order from round to round, driven by `inferd bench` in another process.
 *
 *   node --import tsx bench/small/run.ts [--rounds 3] [--seconds 4] [--concurrency 64]
 *        [--targets limit-node,limit-fastify,limit-grpc,batch,nobatch] [--base /path/to/other/checkout]
 *        [--cpu-rate 1500] [--cpu-seconds 5] [--perf-analyzer PATH] [--limit-node-flags=--max-semi-space-size=32]
 *
 * Throughput mode (default): closed loop at each concurrency, req/s, p50 and p99 per target;
 * ratios against limit-node and limit-fastify. `--base` adds the same inferd targets served by
 * another built checkout (suffix `@base`). With `--cpu-rate`, each target is driven open loop at
 * that fixed rate over REST (JSON) and gRPC instead (the limits over the protocol they speak:
 * limit-grpc is a bare @grpc/grpc-js server, limit-grpc-channelz the same with channelz on,
 * limit-connect a bare @connectrpc/connect-node one), and
 * the server's CPU (all its threads, from /proc) is divided by the requests sent. The load comes
 * from `inferd bench` (Node), or with `--perf-analyzer PATH` (PERF_ANALYZER in the environment)
 * from Triton's perf_analyzer, a C++ client that is not the bottleneck; `bash
 * scripts/setup/perf-analyzer.sh` installs it and prints the PATH to give. inferd runs with the
 * Node flags of its command (bin/inferd.js's shebang); `--limit-node-flags` gives the HTTP limits
 * flags too, to compare at like heap settings.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from '../../test/support/ports.js';
import { breastCancerRepository } from './repository.js';
import { serverNodeFlags } from '../support/node-flags.js';
import { BREAST_CANCER_ROW } from '../protocols/inputs.js';
import { cpuPerCall, perfAnalyzerInput } from '../support/perf-analyzer.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { processCpuSeconds } from '../support/perf-analyzer.js';

const here = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    targets: { type: 'string', default: 'limit-node,limit-fastify,limit-grpc,batch,nobatch' },
    base: { type: 'string' },
    'cpu-rate': { type: 'string' },
    'cpu-seconds': { type: 'string', default: '5' },
    'perf-analyzer': { type: 'string' },
    models: { type: 'string', default: resolve(here, '..', 'shared', 'models') },
    // Node flags for the HTTP limit servers, e.g. inferd's own `--max-semi-space-size=32`.
    'limit-node-flags': { type: 'string', default: '' },
  },
});
const limitNodeFlags = values['limit-node-flags'].split(' ').filter((f) => f !== '');

const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrencies = values.concurrency.split(',').map(Number);
const perfAnalyzer = values['perf-analyzer'] ?? process.env.PERF_ANALYZER;


type Protocol = 'http' | 'grpc';

interface Target {
  name: string;
  start(http: number, grpc: number): ChildProcess;
  /** The protocols it speaks; a target without 'http' has only the CPU mode. */
  protocols: Protocol[];
}

function inferdTarget(name: string, checkout: string, batching: boolean): Target {
  const repo = breastCancerRepository(mkdtempSync(join(tmpdir(), 'inferd-small-')), values.models, batching);
  return {
    name,
    protocols: ['http', 'grpc'],
    start: (http, grpc) =>
      spawn(process.execPath, [...serverNodeFlags(checkout), resolve(checkout, 'bin', 'inferd.js'), 'serve', '--model-repository', repo, '--host', '127.0.0.1', '--port', String(http), '--grpc-port', String(grpc), '--log-level', 'warn'], {
        stdio: 'ignore',
      }),
  };
}

function limitTarget(name: string, plain: boolean): Target {
  return {
    name,
    protocols: ['http'],
    start: (http) =>
      spawn(process.execPath, [...limitNodeFlags, '--import', 'tsx', resolve(here, 'bench', 'peers', 'http-limit.ts'), '--port', String(http), ...(plain ? ['--plain'] : [])], { stdio: 'ignore', cwd: here }),
  };
}

/**
 * A bare gRPC server answering a constant: bench/peers/grpc-limit.ts (@grpc/grpc-js, the
 * library's floor for a call) or bench/peers/connect-limit.ts (@connectrpc/connect-node).
 */
function grpcLimitTarget(name: string, script: 'grpc-limit.ts' | 'connect-limit.ts', extra: string[] = []): Target {
  return {
    name,
    protocols: ['grpc'],
    start: (_http, grpc) => spawn(process.execPath, ['--import', 'tsx', resolve(here, 'bench', 'peers', script), '--port', String(grpc), ...extra], { stdio: 'ignore', cwd: here }),
  };
}

const targets: Target[] = [];
for (const t of values.targets.split(',')) {
  if (t === 'limit-node') targets.push(limitTarget(t, true));
  else if (t === 'limit-fastify') targets.push(limitTarget(t, false));
  else if (t === 'limit-grpc') targets.push(grpcLimitTarget(t, 'grpc-limit.ts'));
  else if (t === 'limit-grpc-channelz') targets.push(grpcLimitTarget(t, 'grpc-limit.ts', ['--channelz']));
  else if (t === 'limit-connect') targets.push(grpcLimitTarget(t, 'connect-limit.ts'));
  else if (t === 'batch' || t === 'nobatch') {
    targets.push(inferdTarget(t, here, t === 'batch'));
    if (values.base) targets.push(inferdTarget(`${t}@base`, values.base, t === 'batch'));
  } else throw new Error(`unknown target ${t}`);
}

/** Whether something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      res(true);
    });
    socket.once('error', () => res(false));
  });
}

async function waitReady(target: Target, http: number, grpc: number, child: ChildProcess): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      if (target.protocols.includes('http')) {
        const r = await fetch(`http://127.0.0.1:${http}/v2/models/breast_cancer`);
        if (r.status === 200) return;
      } else if (await listening(grpc)) return;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (Date.now() - started > 120_000) throw new Error('server did not become ready');
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface Step {
  throughput: number;
  errorCount: number;
  sent: number;
  latency: { p50Us: number; p99Us: number };
}

function bench(args: string[]): Promise<Step[]> {
  return new Promise((res, rej) => {
    const file = join(mkdtempSync(join(tmpdir(), 'inferd-small-')), 'report.json');
    const child = spawn(process.execPath, [resolve(here, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '--no-progress', '--json', file, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) return rej(new Error(`inferd bench exited ${code}`));
      res((JSON.parse(readFileSync(file, 'utf8')) as { steps: Step[] }).steps);
    });
  });
}

/** Server CPU per call at the --cpu-rate, driven by `inferd bench` (open loop). */
async function cpuPerCallNode(protocol: Protocol, url: string, pid: number): Promise<Sample & { note: string }> {
  const rate = values['cpu-rate']!;
  // Warm up at the same rate, then measure CPU over a fixed-rate window.
  await bench(['-i', protocol, '-u', url, '--request-rate-range', rate, '--windows', '1', '--window-ms', '1500']);
  const before = processCpuSeconds(pid);
  const [step] = await bench(['-i', protocol, '-u', url, '--request-rate-range', rate, '--windows', '1', '--window-ms', String(Number(values['cpu-seconds']) * 1000)]);
  const used = processCpuSeconds(pid) - before;
  return {
    rps: step!.throughput,
    p50: step!.latency.p50Us / 1000,
    p99: step!.latency.p99Us / 1000,
    cpuUs: (used / step!.sent) * 1e6,
    note: `${step!.sent} calls, ${step!.errorCount} errors`,
  };
}

const paInput = perfAnalyzer === undefined ? undefined : perfAnalyzerInput('features', BREAST_CANCER_ROW, [30]);

/** The same, driven by perf_analyzer (REST with JSON tensors, or gRPC). */
async function cpuPerCallPerfAnalyzer(protocol: Protocol, port: number, pid: number): Promise<Sample & { note: string }> {
  const m = await cpuPerCall(
    { command: perfAnalyzer!, protocol, url: `127.0.0.1:${port}`, model: 'breast_cancer', rate: Number(values['cpu-rate']), inputData: paInput!, tensorFormat: 'json' },
    pid,
    Number(values['cpu-seconds']),
  );
  return {
    rps: m.throughput,
    p50: (m.p50Us ?? NaN) / 1000,
    p99: (m.p99Us ?? NaN) / 1000,
    cpuUs: m.cpuUs,
    latePct: m.delayedPct ?? 0,
    note: `perf_analyzer, ${Math.round(m.throughput * m.seconds)} calls in ${m.seconds.toFixed(1)} s, ${m.delayedPct ?? 0}% sent late`,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Sample = { rps: number; p50: number; p99: number; cpuUs?: number; latePct?: number };
const samples = new Map<string, Sample[]>();
const add = (key: string, s: Sample): void => void (samples.get(key) ?? samples.set(key, []).get(key)!).push(s);

for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? targets : [...targets].reverse();
  for (const target of order) {
    if (!values['cpu-rate'] && !target.protocols.includes('http')) continue;
    const http = await freePort();
    const grpc = await freePort();
    const child = target.start(http, grpc);
    try {
      await waitReady(target, http, grpc, child);
      if (values['cpu-rate']) {
        const protocols = round % 2 === 0 ? target.protocols : [...target.protocols].reverse();
        for (const protocol of protocols) {
          const port = protocol === 'http' ? http : grpc;
          const sample =
            perfAnalyzer === undefined
              ? await cpuPerCallNode(protocol, protocol === 'http' ? `http://127.0.0.1:${http}` : `127.0.0.1:${grpc}`, child.pid!)
              : await cpuPerCallPerfAnalyzer(protocol, port, child.pid!);
          add(`${target.name} ${protocol}`, sample);
          console.error(`round ${round + 1} ${target.name} ${protocol}: ${sample.cpuUs!.toFixed(0)} us CPU per call (${sample.note}; load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]})`);
        }
      } else {
        const windowMs = String(Math.round((seconds * 1000) / 2));
        const steps = await bench(['-u', `http://127.0.0.1:${http}`, '--concurrency-range', concurrencies.join(','), '--windows', '2', '--window-ms', windowMs, '--warmup-ms', '1000']);
        steps.forEach((s, i) => {
          if (s.errorCount > 0) console.error(`${target.name}: ${s.errorCount} errors`);
          add(`${target.name} c=${concurrencies[i]}`, { rps: s.throughput, p50: s.latency.p50Us / 1000, p99: s.latency.p99Us / 1000 });
          console.error(`round ${round + 1} ${target.name} c=${concurrencies[i]}: ${Math.round(s.throughput)} req/s p50 ${(s.latency.p50Us / 1000).toFixed(2)} p99 ${(s.latency.p99Us / 1000).toFixed(2)} ms`);
        });
      }
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
  }
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const client = values['cpu-rate'] ? `, load from ${perfAnalyzer === undefined ? 'inferd bench' : 'perf_analyzer'}` : '';
console.log(`rounds ${rounds}${client}, load average at the end ${load}`);
const rows = [...samples.entries()].map(([key, xs]) => ({
  key,
  rps: median(xs.map((x) => x.rps)),
  p50: median(xs.map((x) => x.p50)),
  p99: median(xs.map((x) => x.p99)),
  cpuUs: xs[0]!.cpuUs === undefined ? undefined : median(xs.map((x) => x.cpuUs!)),
  latePct: xs[0]!.latePct === undefined ? undefined : median(xs.map((x) => x.latePct!)),
}));
for (const r of rows) {
  const c = r.key.split(' ')[1];
  const ratio = (limit: string): string => {
    const l = rows.find((x) => x.key === `${limit} ${c}`);
    return l ? ` ${((r.rps / l.rps) * 100).toFixed(0)}% of ${limit}` : '';
  };
  if (r.cpuUs !== undefined) {
    // CPU mode: the gRPC call against the same target's JSON call, each protocol against its limit.
    const [name, protocol] = r.key.split(' ');
    const json = rows.find((x) => x.key === `${name} http`);
    // Ratios within each round (same server process, minutes apart at most), then the median.
    const perRound = (samples.get(r.key) ?? []).map((x, i) => x.cpuUs! / (samples.get(`${name} http`)?.[i]?.cpuUs ?? NaN)).filter(Number.isFinite);
    const vsJson = protocol === 'grpc' && json ? `, ${((r.cpuUs / json.cpuUs!) * 100).toFixed(0)}% of its JSON call (per round: median ${(median(perRound) * 100).toFixed(0)}%)` : '';
    const limits = protocol === 'grpc' ? ['limit-grpc'] : ['limit-node', 'limit-fastify'];
    const vsLimit = r.key.startsWith('limit')
      ? ''
      : limits.map((l) => rows.find((x) => x.key === `${l} ${protocol}`)).filter((l) => l !== undefined).map((l) => `, ${(r.cpuUs! - l.cpuUs!).toFixed(0)} us over ${l.key}`).join('');
    // perf_analyzer sends late when it is short of CPU; late requests arrive in bursts, which
    // the server handles for less CPU each, so a protocol sent later looks cheaper.
    const late = r.latePct === undefined ? '' : `  ${r.latePct.toFixed(0)}% sent late`;
    console.log(`${r.key.padEnd(26)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ${r.cpuUs.toFixed(0)} us CPU/call${late}${vsJson}${vsLimit}`);
    continue;
  }
  console.log(`${r.key.padEnd(24)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${r.key.startsWith('limit') ? '' : ratio('limit-node') + ratio('limit-fastify')}`);
}
