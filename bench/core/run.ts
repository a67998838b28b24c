/**
 * The serving-core benchmark: event-loop isolation, REST throughput against the machine's HTTP
 * limit and raw onnxruntime, memory, and cold start. Each figure is the median of repeated
 * runs; ratios are taken within one run because the machine is shared and noisy.
 *
 *   npm run build && npx tsx bench/core/run.ts [--runs 3] [--duration 5] [--only isolation,rest,memory,coldstart]
 *
 * Writes bench/results/core.json and prints markdown tables.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { freePort } from '../../test/support/ports.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import * as ort from 'onnxruntime-node';
import { syntheticImage } from '../protocols/inputs.js';
import { serverNodeFlags } from '../support/node-flags.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED = resolve(ROOT, '..', 'shared', 'models');
const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const RUNS = Number(flag('runs', '3'));
const DURATION = Number(flag('duration', '5'));
const ONLY = new Set(flag('only', 'isolation,rest,metrics,memory,coldstart').split(','));

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

interface Proc {
  url: string;
  child: ChildProcess;
  startedAt: number;
  readyAt: number;
  stop(): Promise<void>;
}

async function waitFor(url: string, child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before ${url} answered`);
    try {
      const r = await fetch(url);
      if (r.status === 200) return;
    } catch {
      // not yet
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${url} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startInferd(repo: string, env: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  const startedAt = performance.now();
  const child = spawn(process.execPath, [...serverNodeFlags(ROOT), join(ROOT, 'bin', 'inferd.js'), 'serve', '--model-repository', repo, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', '-1', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, INFERD_LOGGING__ACCESS_LOG: 'false', ...env },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health/ready`, child);
  const readyAt = performance.now();
  return { url, child, startedAt, readyAt, stop: () => stopChild(child) };
}

async function startHelper(kind: 'http-limit' | 'main-thread', model = ''): Promise<Proc> {
  const port = await freePort();
  const startedAt = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'core', 'servers.ts'), kind, String(port), model], { stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/health`, child);
  return { url, child, startedAt, readyAt: performance.now(), stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res();
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

async function repository(models: Record<string, { from: string; config: string }>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inferd-bench-'));
  for (const [name, m] of Object.entries(models)) {
    await cp(m.from, join(root, name), { recursive: true });
    await writeFile(join(root, name, 'config.yaml'), m.config);
  }
  return root;
}

async function load(url: string, body: string | Buffer, connections: number, duration = DURATION, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const r = await autocannon({ url, method: 'POST', body, headers, connections, duration });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx };
}

/** The same load from another process (bench/core/load-process.ts), so this one's event loop stays free to time probes. */
async function loadFromProcess(url: string, bodyFile: string, connections: number, duration: number, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'core', 'load-process.ts'), JSON.stringify({ url, bodyFile, headers, connections, duration })], { stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`load process exited ${code}`);
  return JSON.parse(out) as { rps: number; p50: number; p99: number; errors: number };
}

/** Sequential GET /health probes on one keep-alive socket; returns latencies in ms. */
async function probeHealth(url: string, count: number, gapMs: number): Promise<number[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await new Promise<void>((res, rej) => {
      http.get(`${url}/health`, { agent }, (r) => {
        r.resume();
        r.on('end', () => res());
      }).on('error', rej);
    });
    out.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  agent.destroy();
  return out;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const BC_ROW = Array.from({ length: 30 }, (_, i) => (i % 7) + 0.5);
const BC_BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: BC_ROW }] });
const results: Record<string, unknown> = { date: new Date().toISOString(), runs: RUNS, durationSeconds: DURATION, node: process.version };

// ---------------------------------------------------------------------------------------------
async function isolation() {
  const mobilenet = join(SHARED, 'mobilenet_v2');
  // An ImageNet-normalised picture as a client writing a Float32Array sends it: 2.9 MB of JSON.
  const image = syntheticImage(3 * 224 * 224);
  const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data: Array.from(image) }] });
  // The same request with the binary tensor extension: the 602 KB tensor is not JSON-parsed.
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], parameters: { binary_data_size: 3 * 224 * 224 * 4 } }] }));
  const binaryBody = Buffer.concat([header, Buffer.from(image.buffer)]);
  const binaryHeaders = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) };
  const bodies = await mkdtemp(join(tmpdir(), 'inferd-isolation-'));
  const jsonFile = join(bodies, 'request.json');
  const binaryFile = join(bodies, 'request.bin');
  await writeFile(jsonFile, body);
  await writeFile(binaryFile, binaryBody);
  const repo = await repository({ mobilenet_v2: { from: mobilenet, config: 'max_batch_size: 4\ninstances: 1\nonnx: { intra_op_threads: 2 }\nwarmup: []\n' } });
  const rows: Record<string, number[]>[] = [];
  for (let run = 0; run < RUNS; run++) {
    const row: Record<string, number[]> = {};
    for (const [label, start, binary] of [
      ['inferd (worker threads), binary tensors', () => startInferd(repo), true],
      ['inferd (worker threads), JSON tensors', () => startInferd(repo), false],
      // Large JSON bodies decoded in the decoder thread while they arrive.
      ['inferd (worker threads), JSON tensors decoded while they arrive', () => startInferd(repo, { INFERD_SERVER__JSON_DECODE_ARRIVING: 'true' }), false],
      // Every JSON body decoded on the event loop, as before server.json_offload_bytes.
      ['inferd (worker threads), JSON tensors decoded on the event loop', () => startInferd(repo, { INFERD_SERVER__JSON_OFFLOAD_BYTES: '0' }), false],
      ['inference on the main thread, JSON tensors', () => startHelper('main-thread', join(mobilenet, '1', 'model.onnx')), false],
    ] as const) {
      const server = await start();
      const idle = await probeHealth(server.url, 200, 5);
      // The load comes from another process: sending 2.9 MB bodies from this one would delay the probes here.
      const loader = binary
        ? loadFromProcess(`${server.url}/v2/models/mobilenet_v2/infer`, binaryFile, 4, 8, binaryHeaders)
        : loadFromProcess(`${server.url}/v2/models/mobilenet_v2/infer`, jsonFile, 4, 8);
      await new Promise((r) => setTimeout(r, 2000));
      const busy = await probeHealth(server.url, 200, 5);
      await loader;
      await server.stop();
      row[label] = [pct(idle, 50), pct(idle, 99), pct(busy, 50), pct(busy, 99)];
    }
    rows.push(row);
  }
  const table: Record<string, { idleP50: number; idleP99: number; busyP50: number; busyP99: number; p99Ratio: number }> = {};
  for (const label of Object.keys(rows[0]!)) {
    const m = [0, 1, 2, 3].map((i) => median(rows.map((r) => r[label]![i]!)));
    table[label] = { idleP50: round(m[0]!), idleP99: round(m[1]!), busyP50: round(m[2]!), busyP99: round(m[3]!), p99Ratio: round(m[3]! / m[1]!) };
  }
  results.isolation = table;
  console.log('\n### GET /health latency (ms), idle and while mobilenet_v2 saturates the CPU\n');
  console.log('| server | idle p50 | idle p99 | saturated p50 | saturated p99 | p99 saturated / idle |\n|---|---|---|---|---|---|');
  for (const [k, v] of Object.entries(table)) console.log(`| ${k} | ${v.idleP50} | ${v.idleP99} | ${v.busyP50} | ${v.busyP99} | ${v.p99Ratio}x |`);
}

// ---------------------------------------------------------------------------------------------
async function rawOnnx(seconds: number, batch: number): Promise<number> {
  const session = await ort.InferenceSession.create(join(SHARED, 'breast_cancer', '1', 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const input = new ort.Tensor('float32', new Float32Array(30 * batch).fill(1), [batch, 30]);
  for (let i = 0; i < 200; i++) await session.run({ features: input });
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await session.run({ features: input });
    n++;
  }
  await session.release();
  return (n * batch) / seconds;
}

async function rest() {
  const bc = join(ROOT, 'examples', 'models', 'breast_cancer');
  const plain = await repository({ breast_cancer: { from: bc, config: 'max_batch_size: 64\nonnx: { intra_op_threads: 1 }\n' } });
  const batched = await repository({ breast_cancer: { from: bc, config: 'max_batch_size: 64\nonnx: { intra_op_threads: 1 }\ndynamic_batching: { max_queue_delay_microseconds: 0 }\nqueue: { max_size: 4096 }\n' } });
  const concurrencies = [1, 16, 64];
  const samples: Record<string, Record<number, Array<{ rps: number; p50: number; p99: number; errors: number }>>> = {};
  const add = (label: string, c: number, r: { rps: number; p50: number; p99: number; errors: number }) => {
    ((samples[label] ??= {})[c] ??= []).push(r);
  };
  const rawSamples: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    for (const [label, start] of [
      ['HTTP limit (Fastify, parse JSON, constant answer)', () => startHelper('http-limit')],
      ['inferd, no batching', () => startInferd(plain)],
      ['inferd, dynamic batching', () => startInferd(batched)],
    ] as const) {
      const server = await start();
      await load(`${server.url}/v2/models/breast_cancer/infer`, BC_BODY, 16, 1); // warm-up
      for (const c of concurrencies) add(label, c, await load(`${server.url}/v2/models/breast_cancer/infer`, BC_BODY, c));
      await server.stop();
    }
    rawSamples.push(await rawOnnx(DURATION, 1));
  }
  const table: Record<string, Record<number, { rps: number; p50: number; p99: number; errors: number }>> = {};
  for (const [label, byC] of Object.entries(samples)) {
    table[label] = {};
    for (const [c, xs] of Object.entries(byC)) {
      table[label]![Number(c)] = { rps: Math.round(median(xs.map((x) => x.rps))), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), errors: Math.max(...xs.map((x) => x.errors)) };
    }
  }
  const raw = Math.round(median(rawSamples));
  results.rest = { table, rawSessionRunPerSecondBatch1: raw };
  const limit = table['HTTP limit (Fastify, parse JSON, constant answer)']!;
  console.log('\n### breast_cancer over REST (requests/s, latency ms)\n');
  console.log('| server | c | req/s | p50 | p99 | vs HTTP limit | errors |\n|---|---|---|---|---|---|---|');
  for (const [label, byC] of Object.entries(table)) {
    for (const c of concurrencies) {
      const r = byC[c]!;
      console.log(`| ${label} | ${c} | ${r.rps} | ${r.p50} | ${r.p99} | ${Math.round((100 * r.rps) / limit[c]!.rps)}% | ${r.errors} |`);
    }
  }
  console.log(`| raw session.run() in one process, batch 1 | - | ${raw} | - | - | - | - |`);
}

// ---------------------------------------------------------------------------------------------
/** The cost of metrics: the same saturating load with metrics on and off, interleaved. */
async function metricsCost() {
  const bc = join(ROOT, 'examples', 'models', 'breast_cancer');
  const repo = await repository({ breast_cancer: { from: bc, config: 'max_batch_size: 64\ndynamic_batching: { max_queue_delay_microseconds: 0 }\nqueue: { max_size: 4096 }\n' } });
  const on: number[] = [];
  const off: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    for (const [enabled, into] of [['true', on], ['false', off]] as const) {
      const server = await startInferd(repo, { INFERD_METRICS__ENABLED: enabled });
      await load(`${server.url}/v2/models/breast_cancer/infer`, BC_BODY, 64, 1);
      into.push((await load(`${server.url}/v2/models/breast_cancer/infer`, BC_BODY, 64)).rps);
      await server.stop();
    }
  }
  const ratios = on.map((x, i) => x / off[i]!);
  results.metricsCost = { rpsMetricsOn: Math.round(median(on)), rpsMetricsOff: Math.round(median(off)), medianRatioOnOverOff: round(median(ratios), 3) };
  console.log('\n### Metrics on vs off, breast_cancer at concurrency 64 (batching on)\n');
  console.log(`| metrics on | metrics off | on / off (median of per-run ratios) |\n|---|---|---|\n| ${Math.round(median(on))} req/s | ${Math.round(median(off))} req/s | ${round(median(ratios), 3)} |`);
}

// ---------------------------------------------------------------------------------------------
function rssMb(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/status`, 'utf8').then((s) => Number(/VmRSS:\s+(\d+)/.exec(s)![1]) / 1024);
}

async function memory() {
  const examples = join(ROOT, 'examples', 'models');
  const idle: number[] = [];
  const perInstance: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const s = await startInferd(examples);
    await new Promise((r) => setTimeout(r, 1000));
    idle.push(await rssMb(s.child.pid!));
    await s.stop();
    const sizes: number[] = [];
    for (const n of [1, 2, 3]) {
      const repo = await repository({ breast_cancer: { from: join(examples, 'breast_cancer'), config: `instances: ${n}\n` } });
      const p = await startInferd(repo);
      await new Promise((r) => setTimeout(r, 1000));
      sizes.push(await rssMb(p.child.pid!));
      await p.stop();
    }
    perInstance.push((sizes[2]! - sizes[0]!) / 2);
  }
  results.memory = { idleRssMbExampleRepository: round(median(idle), 1), addedRssMbPerWorkerInstance: round(median(perInstance), 1) };
  console.log('\n### Memory\n');
  console.log(`| RSS at idle, example repository (4 models, 1 instance each) | ${round(median(idle), 1)} MB |\n|---|---|`);
  console.log(`| added per further worker instance (breast_cancer) | ${round(median(perInstance), 1)} MB |`);
}

// ---------------------------------------------------------------------------------------------
async function coldstart() {
  const examples = join(ROOT, 'examples', 'models');
  const models: Record<string, { from: string; config: string }> = {
    breast_cancer: { from: join(examples, 'breast_cancer'), config: (await readFile(join(examples, 'breast_cancer', 'config.yaml'), 'utf8')) },
    digits: { from: join(examples, 'digits'), config: (await readFile(join(examples, 'digits', 'config.yaml'), 'utf8')) },
    text_encoder_tiny: { from: join(examples, 'text_encoder_tiny'), config: (await readFile(join(examples, 'text_encoder_tiny', 'config.yaml'), 'utf8')) },
    text_tokenizer: { from: join(examples, 'text_tokenizer'), config: (await readFile(join(examples, 'text_tokenizer', 'config.yaml'), 'utf8')) },
    mobilenet_v2: { from: join(SHARED, 'mobilenet_v2'), config: 'max_batch_size: 8\nonnx: { intra_op_threads: 2 }\nwarmup: [{ batch_size: 1, count: 1 }]\n' },
  };
  const out: Record<string, number> = {};
  for (const [name, m] of Object.entries(models)) {
    const repo = await repository({ [name]: m });
    const xs: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const s = await startInferd(repo);
      xs.push(s.readyAt - s.startedAt);
      await s.stop();
    }
    out[name] = Math.round(median(xs));
  }
  results.coldStartMs = out;
  console.log('\n### Cold start: process start to /health/ready (ms, includes warm-up)\n');
  console.log('| model | ms |\n|---|---|');
  for (const [k, v] of Object.entries(out)) console.log(`| ${k} | ${v} |`);
}

if (ONLY.has('isolation')) await isolation();
if (ONLY.has('rest')) await rest();
if (ONLY.has('metrics')) await metricsCost();
if (ONLY.has('memory')) await memory();
if (ONLY.has('coldstart')) await coldstart();
await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(join(ROOT, 'bench', 'results', 'core.json'), JSON.stringify(results, null, 2));
