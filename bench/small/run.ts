/**
 * Small requests (breast_cancer, 30 floats): inferd with and without batching against the HTTP
 * limits (node:http and Fastify servers that only parse the body and answer a constant), and the
 * server CPU one small call costs over REST/JSON and gRPC. Servers run one at a time in their own
 * process, in alternating order from round to round, driven by `inferd bench` in another process.
 *
 *   node --import tsx bench/small/run.ts [--rounds 3] [--seconds 4] [--concurrency 64]
 *        [--targets limit-node,limit-fastify,batch,nobatch] [--base /path/to/other/checkout]
 *        [--cpu-rate 1500] [--cpu-seconds 5]
 *
 * Throughput mode (default): closed loop at each concurrency, req/s, p50 and p99 per target;
 * ratios against limit-node and limit-fastify. `--base` adds the same inferd targets served by
 * another built checkout (suffix `@base`). With `--cpu-rate`, each inferd target is driven
 * open loop at that fixed rate over REST (JSON) and gRPC instead, and the server's CPU (all its
 * threads, from /proc) is divided by the requests sent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { freePort } from '../../test/support/ports.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const here = resolve(import.meta.dirname, '..', '..');
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    targets: { type: 'string', default: 'limit-node,limit-fastify,batch,nobatch' },
    base: { type: 'string' },
    'cpu-rate': { type: 'string' },
    'cpu-seconds': { type: 'string', default: '5' },
    models: { type: 'string', default: resolve(here, '..', 'shared', 'models') },
  },
});

const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const concurrencies = values.concurrency.split(',').map(Number);

/** A model repository with breast_cancer configured with or without dynamic batching. */
function repository(batching: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'inferd-small-'));
  mkdirSync(join(dir, 'breast_cancer', '1'), { recursive: true });
  symlinkSync(resolve(values.models, 'breast_cancer', '1', 'model.onnx'), join(dir, 'breast_cancer', '1', 'model.onnx'));
  writeFileSync(
    join(dir, 'breast_cancer', 'config.yaml'),
    [
      'runtime: onnx',
      'max_batch_size: 64',
      'instances: 1',
      'onnx: { intra_op_threads: 1, inter_op_threads: 1 }',
      'inputs: [{ name: features, datatype: FP32, shape: [-1, 30] }]',
      'outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 2] }, { name: label, datatype: INT64, shape: [-1] }]',
      batching ? 'dynamic_batching: { max_queue_delay_microseconds: 0 }' : '',
      'queue: { max_size: 4096 }',
      '',
    ].join('\n'),
  );
  return dir;
}

interface Target {
  name: string;
  start(http: number, grpc: number): ChildProcess;
  grpc: boolean;
}

function inferdTarget(name: string, checkout: string, batching: boolean): Target {
  const repo = repository(batching);
  return {
    name,
    grpc: true,
    start: (http, grpc) =>
      spawn(process.execPath, [resolve(checkout, 'bin', 'inferd.js'), 'serve', '--model-repository', repo, '--host', '127.0.0.1', '--port', String(http), '--grpc-port', String(grpc), '--log-level', 'warn'], {
        stdio: 'ignore',
      }),
  };
}

function limitTarget(name: string, plain: boolean): Target {
  return {
    name,
    grpc: false,
    start: (http) =>
      spawn(process.execPath, ['--import', 'tsx', resolve(here, 'bench', 'peers', 'http-limit.ts'), '--port', String(http), ...(plain ? ['--plain'] : [])], { stdio: 'ignore', cwd: here }),
  };
}

const targets: Target[] = [];
for (const t of values.targets.split(',')) {
  if (t === 'limit-node') targets.push(limitTarget(t, true));
  else if (t === 'limit-fastify') targets.push(limitTarget(t, false));
  else if (t === 'batch' || t === 'nobatch') {
    targets.push(inferdTarget(t, here, t === 'batch'));
    if (values.base) targets.push(inferdTarget(`${t}@base`, values.base, t === 'batch'));
  } else throw new Error(`unknown target ${t}`);
}

async function waitReady(port: number, child: ChildProcess): Promise<void> {
  const started = Date.now();
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/models/breast_cancer`);
      if (r.status === 200) return;
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

/** CPU seconds used so far by a process and all its threads. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (USER_HZ 100)
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

type Sample = { rps: number; p50: number; p99: number; cpuUs?: number };
const samples = new Map<string, Sample[]>();
const add = (key: string, s: Sample): void => void (samples.get(key) ?? samples.set(key, []).get(key)!).push(s);

for (let round = 0; round < rounds; round++) {
  const order = round % 2 === 0 ? targets : [...targets].reverse();
  for (const target of order) {
    if (values['cpu-rate'] && !target.name.startsWith('batch') && !target.name.startsWith('nobatch')) continue;
    const http = await freePort();
    const grpc = await freePort();
    const child = target.start(http, grpc);
    try {
      await waitReady(http, child);
      if (values['cpu-rate']) {
        for (const protocol of ['http', 'grpc'] as const) {
          const url = protocol === 'http' ? `http://127.0.0.1:${http}` : `127.0.0.1:${grpc}`;
          // Warm up at the same rate, then measure CPU over a fixed-rate window.
          await bench(['-i', protocol, '-u', url, '--request-rate-range', values['cpu-rate'], '--windows', '1', '--window-ms', '1500']);
          const before = cpuSeconds(child.pid!);
          const [step] = await bench(['-i', protocol, '-u', url, '--request-rate-range', values['cpu-rate'], '--windows', '1', '--window-ms', String(Number(values['cpu-seconds']) * 1000)]);
          const used = cpuSeconds(child.pid!) - before;
          const cpuUs = (used / step!.sent) * 1e6;
          add(`${target.name} ${protocol}`, { rps: step!.throughput, p50: step!.latency.p50Us / 1000, p99: step!.latency.p99Us / 1000, cpuUs });
          console.error(`round ${round + 1} ${target.name} ${protocol}: ${cpuUs.toFixed(0)} us CPU per call (${step!.sent} calls, ${step!.errorCount} errors)`);
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
console.log(`rounds ${rounds}, load average at the end ${load}`);
const rows = [...samples.entries()].map(([key, xs]) => ({
  key,
  rps: median(xs.map((x) => x.rps)),
  p50: median(xs.map((x) => x.p50)),
  p99: median(xs.map((x) => x.p99)),
  cpuUs: xs[0]!.cpuUs === undefined ? undefined : median(xs.map((x) => x.cpuUs!)),
}));
for (const r of rows) {
  const c = r.key.split(' ')[1];
  const ratio = (limit: string): string => {
    const l = rows.find((x) => x.key === `${limit} ${c}`);
    return l ? ` ${((r.rps / l.rps) * 100).toFixed(0)}% of ${limit}` : '';
  };
  const cpu = r.cpuUs === undefined ? '' : ` ${r.cpuUs.toFixed(0)} us CPU/call`;
  console.log(`${r.key.padEnd(24)} ${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms${cpu}${r.key.startsWith('limit') ? '' : ratio('limit-node') + ratio('limit-fastify')}`);
}
