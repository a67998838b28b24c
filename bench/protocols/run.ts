/**
 * The protocol comparison: the same model on the same server, driven over REST + JSON, REST with
 * the binary tensor extension, and gRPC with raw_input_contents, next to the model alone
 * (onnxruntime-node session.run in one process). For mobilenet_v2 (602 KB of FP32 per request) at
 * concurrency 1 and 4 and breast_cancer (120 bytes) at 1, 16 and 64 it measures throughput,
 * p50/p99 latency, bytes on the wire, the batches the server formed and the server's CPU time per
 * request (all threads, and the main thread alone, where the wire formats are decoded and
 * encoded). The model alone is measured right before and after every mobilenet_v2 cell, so each
 * protocol is a share of raw taken within one run; the tables show medians over runs. Then it
 * profiles the server under each protocol's load with `node --cpu-prof`, and runs Triton's
 * perf_analyzer when given one.
 *
 *   npm run build && npx tsx bench/protocols/run.ts [--runs 3] [--duration 5] [--warmup 1]
 *       [--only mobilenet_v2,breast_cancer] [--profile json:4,binary:1,... | --profile none]
 *       [--perf-analyzer PATH [--perf-analyzer-rate N]] [--out bench/protocols/results]
 *   npx tsx bench/protocols/run.ts --report bench/protocols/results/results.json   (tables again, no run)
 *
 * PERF_ANALYZER in the environment stands for --perf-analyzer (`bash scripts/setup/perf-analyzer.sh`
 * installs it and prints the path); perf_analyzer drives breast_cancer over REST (JSON and binary
 * tensors) and gRPC, closed loop at each concurrency or open loop at --perf-analyzer-rate, and the
 * server's CPU per request is measured while it runs. Temporary files (the model
 * repository, server logs, profiles) go under the system temporary directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { closedLoop, grpcTransport, httpTransport, type LoadResult, type Target, type Transport } from './load.js';
import { BREAST_CANCER_ROW, MOBILENET_CONFIG, syntheticImage } from './inputs.js';
import { profileMarkdown, summariseProfile, type ProfileSummary } from './profile.js';
import type { RawPoint } from './raw-model.js';
import { RawModelProcess } from './raw-model-client.js';
import {
  batchCounters,
  counterDelta,
  cpuProfiles,
  makeRepository,
  startServer,
  type BatchCounters,
  type CpuSample,
  type RunningServer,
} from './server.js';
import { cpuPerCall, perfAnalyzerInput } from '../support/perf-analyzer.js';
import { decodeResponse, encodeRequest, maxDifference, modelInferMethod, PROTOCOL_LABEL, PROTOCOLS, type InputTensor, type Protocol } from './wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SHARED_MODELS = resolve(ROOT, '..', 'shared', 'models');

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    only: { type: 'string', default: 'mobilenet_v2,breast_cancer' },
    profile: { type: 'string', default: 'json:4,json:1,binary:1,grpc:1,binary:4,grpc:4' },
    'profile-seconds': { type: 'string' },
    'perf-analyzer': { type: 'string' },
    'perf-analyzer-rate': { type: 'string' },
    out: { type: 'string', default: join(ROOT, 'bench', 'protocols', 'results') },
    report: { type: 'string' },
  },
});
const RUNS = Number(flags.runs);
const DURATION_S = Number(flags.duration);
const WARMUP_S = Number(flags.warmup);
const ONLY = new Set(flags.only!.split(','));
/** protocol:concurrency pairs to profile mobilenet_v2 under (concurrency 4 when left out). */
const PROFILES = (flags.profile === 'none' ? [] : flags.profile!.split(',')).map((entry) => {
  const [protocol, concurrency] = entry.split(':');
  if (!PROTOCOLS.includes(protocol as Protocol)) throw new Error(`--profile: unknown protocol '${protocol}' (json, binary, grpc)`);
  return { protocol: protocol as Protocol, concurrency: Number(concurrency ?? 4) };
});
const PROFILE_S = Number(flags['profile-seconds'] ?? 2 * DURATION_S);
const PERF_ANALYZER = flags['perf-analyzer'] ?? process.env.PERF_ANALYZER;
/** perf_analyzer open loop at this rate instead of closed loop at each concurrency. */
const PA_RATE = flags['perf-analyzer-rate'] === undefined ? undefined : Number(flags['perf-analyzer-rate']);
const OUT = resolve(flags.out!);

interface BenchModel {
  name: string;
  onnx: string;
  config: string;
  input: InputTensor;
  concurrency: number[];
  /** Measure the model alone too (rows per second with session.run), with these settings. */
  raw?: { threads: number; rowShape: number[] };
}


const MODELS: BenchModel[] = [
  {
    name: 'mobilenet_v2',
    onnx: join(SHARED_MODELS, 'mobilenet_v2', '1', 'model.onnx'),
    config: MOBILENET_CONFIG,
    input: { name: 'input', shape: [1, 3, 224, 224], values: syntheticImage(3 * 224 * 224) },
    concurrency: [1, 4],
    raw: { threads: 2, rowShape: [3, 224, 224] },
  },
  {
    name: 'breast_cancer',
    onnx: join(ROOT, 'examples', 'models', 'breast_cancer', '1', 'model.onnx'),
    config: readFileSync(join(ROOT, 'examples', 'models', 'breast_cancer', 'config.yaml'), 'utf8'),
    input: { name: 'features', shape: [1, 30], values: BREAST_CANCER_ROW },
    concurrency: [1, 16, 64],
  },
].filter((m) => ONLY.has(m.name));

// ---- helpers ----

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (x: number, digits = 1): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const fmt3 = (x: number): string => (!Number.isFinite(x) ? '-' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const bytes = (n: number): string => (!Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const log = (message: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
const load1 = (): number => loadavg()[0]!;

function transportFor(protocol: Protocol, target: Target, model: BenchModel, concurrency: number): Transport {
  const request = encodeRequest(protocol, model.name, model.input);
  if (protocol === 'grpc') return grpcTransport(target, modelInferMethod(), request);
  return httpTransport(target, `/v2/models/${model.name}/infer`, request, concurrency);
}

/** The model alone, in its own process, kept loaded so it can be measured between server cells. */
function startRawModel(model: BenchModel, logFile: string): Promise<RawModelProcess> {
  const raw = model.raw!;
  return RawModelProcess.start(['--model', model.onnx, '--input', model.input.name, '--shape', raw.rowShape.join(','), '--threads', String(raw.threads)], logFile);
}

// ---- one measured cell ----

interface Edge {
  cpu: CpuSample;
  counters: BatchCounters;
  load1: number;
}

interface Cell {
  run: number;
  model: string;
  protocol: Protocol;
  concurrency: number;
  load: LoadResult;
  load1: number;
  serverCpuMsPerRequest: number;
  serverMainCpuMsPerRequest: number;
  batches: BatchCounters;
  meanBatch: number;
  /** Model compute per execution inside the server, ms, by batch size. */
  serverInferMs: Record<number, number>;
  /** Share of the window the model instance spent in session.run, percent (one instance). */
  instanceBusyPct: number;
  /** Mean time a request spent inside the data plane (queue, batching, model, copies), ms. */
  dataPlaneMs: number;
  /** Raw session.run rows/s at this cell's mix of batch sizes (mobilenet only). */
  rawAtBatchMix?: number;
  /** Raw session.run rows/s at batch 1, same measurements. */
  rawBatch1?: number;
  pctOfRaw?: number;
  /** Time per request beyond the model at the same batch mix: 1/throughput - 1/raw, ms. */
  overheadMs?: number;
  /** CPU the model alone spends per row at the cell's batch mix, ms (every thread of the raw process). */
  rawCpuMsPerRow?: number;
}

async function measure(server: RunningServer, model: BenchModel, protocol: Protocol, concurrency: number, run: number): Promise<Cell> {
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const transport = transportFor(protocol, target, model, concurrency);
  const snapshot = async (): Promise<Edge> => {
    const cpu = server.cpu();
    return { cpu, counters: await batchCounters(server.httpPort, model.name), load1: load1() };
  };
  try {
    const { result, before, after } = await closedLoop(transport, concurrency, WARMUP_S * 1000, DURATION_S * 1000, snapshot);
    const batches = counterDelta(before.counters, after.counters);
    const serverInferMs: Record<number, number> = {};
    for (const [size, b] of Object.entries(batches.batches)) serverInferMs[Number(size)] = b.inferNs / b.count / 1e6;
    const cell: Cell = {
      run,
      model: model.name,
      protocol,
      concurrency,
      load: result,
      load1: (before.load1 + after.load1) / 2,
      serverCpuMsPerRequest: (after.cpu.totalMs - before.cpu.totalMs) / result.completed,
      serverMainCpuMsPerRequest: (after.cpu.mainMs - before.cpu.mainMs) / result.completed,
      batches,
      meanBatch: batches.executions > 0 ? batches.inferences / batches.executions : NaN,
      serverInferMs,
      instanceBusyPct: (100 * Object.values(batches.batches).reduce((n, b) => n + b.inferNs, 0)) / (result.seconds * 1e9),
      dataPlaneMs: batches.success.count > 0 ? batches.success.ns / batches.success.count / 1e6 : NaN,
    };
    log(
      `run ${run} ${model.name} c=${concurrency} ${protocol}: ${fmt(result.throughput)} req/s, p50 ${fmt3(result.p50Ms)} ms, p99 ${fmt3(result.p99Ms)} ms, batch ${fmt(cell.meanBatch, 2)}, errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}`,
    );
    return cell;
  } finally {
    transport.close();
  }
}

/** Rows/s the model alone manages at the cell's mix of batch sizes (time-weighted by executions). */
function rawAtMix(cell: Cell, raw: Map<number, number>): number | undefined {
  let rows = 0;
  let ms = 0;
  for (const [size, b] of Object.entries(cell.batches.batches)) {
    const perRun = raw.get(Number(size));
    if (perRun === undefined) return undefined;
    rows += Number(size) * b.count;
    ms += perRun * b.count;
  }
  return ms > 0 ? (rows * 1000) / ms : undefined;
}

// ---- answers: every protocol must return what JSON returns ----

interface AnswerCheck {
  model: string;
  protocol: Protocol;
  requestBytes: number;
  responseBytes: number;
  maxAbsDiffVsJson: number;
}

async function checkAnswers(server: RunningServer, model: BenchModel): Promise<AnswerCheck[]> {
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const answers = new Map<Protocol, ReturnType<typeof decodeResponse>>();
  const out: AnswerCheck[] = [];
  for (const protocol of PROTOCOLS) {
    const transport = transportFor(protocol, target, model, 1);
    try {
      const response = await transport.fetch();
      answers.set(protocol, decodeResponse(protocol, response));
      out.push({ model: model.name, protocol, requestBytes: transport.requestBytes, responseBytes: response.body.byteLength, maxAbsDiffVsJson: 0 });
    } finally {
      transport.close();
    }
  }
  for (const c of out) c.maxAbsDiffVsJson = maxDifference(answers.get('json')!, answers.get(c.protocol)!);
  return out;
}

// ---- perf_analyzer ----

interface PerfAnalyzerRow {
  variant: string;
  concurrency: number;
  throughput?: number;
  p50Ms?: number;
  p99Ms?: number;
  avgMs?: number;
  /** Server CPU (all threads) per request while perf_analyzer ran, ms. */
  serverCpuMsPerRequest?: number;
  note?: string;
}

function runCommand(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      res({ code: -1, out: String(e) });
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, out });
    });
  });
}

async function perfAnalyzer(cmd: string, server: RunningServer, model: BenchModel, concurrencies: number[]): Promise<PerfAnalyzerRow[]> {
  const variants: Array<{ label: string; protocol: 'http' | 'grpc'; port: number; format?: 'json' | 'binary' }> = [
    { label: 'HTTP, JSON tensors', protocol: 'http', port: server.httpPort, format: 'json' },
    { label: 'HTTP, binary tensors', protocol: 'http', port: server.httpPort, format: 'binary' },
    { label: 'gRPC', protocol: 'grpc', port: server.grpcPort },
  ];
  // The same row as the other clients send, not random data.
  const inputData = perfAnalyzerInput(model.input.name, model.input.values, model.input.shape.slice(1));
  const rows: PerfAnalyzerRow[] = [];
  for (const v of variants) {
    for (const c of concurrencies) {
      const row: PerfAnalyzerRow = { variant: v.label, concurrency: c };
      try {
        const m = await cpuPerCall(
          {
            command: cmd,
            protocol: v.protocol,
            url: `127.0.0.1:${v.port}`,
            model: model.name,
            ...(PA_RATE !== undefined ? { rate: PA_RATE } : { concurrency: c }),
            inputData,
            ...(v.format ? { tensorFormat: v.format } : {}),
          },
          server.pid,
          DURATION_S,
          WARMUP_S,
        );
        row.throughput = m.throughput;
        if (m.p50Us !== undefined) row.p50Ms = m.p50Us / 1000;
        if (m.p99Us !== undefined) row.p99Ms = m.p99Us / 1000;
        if (m.result.avgUs !== undefined) row.avgMs = m.result.avgUs / 1000;
        row.serverCpuMsPerRequest = m.cpuUs / 1000;
        if (m.result.code !== 0) row.note = `exit ${m.result.code}: no stable measurement, median of its windows`;
        else if ((m.delayedPct ?? 0) > 0) row.note = `${m.delayedPct}% sent late`;
      } catch (error) {
        row.note = String(error instanceof Error ? error.message : error).slice(0, 160);
      }
      log(`perf_analyzer ${v.label} c=${c}: ${fmt(row.throughput ?? NaN)} infer/s, server ${fmt3((row.serverCpuMsPerRequest ?? NaN) * 1000)} us CPU/req${row.note ? ` (${row.note})` : ''}`);
      rows.push(row);
      if (PA_RATE !== undefined) break; // open loop: one row per protocol
    }
  }
  return rows;
}

// ---- profiles ----

interface ProfileRun {
  protocol: Protocol;
  concurrency: number;
  throughput: number;
  serverMainCpuMsPerRequest: number;
  threads: ProfileSummary[];
}

async function profileProtocol(repository: string, tmp: string, model: BenchModel, protocol: Protocol, concurrency: number): Promise<ProfileRun> {
  const dir = join(tmp, `cpuprofile-${protocol}-c${concurrency}`);
  mkdirSync(dir, { recursive: true });
  const server = await startServer({
    root: ROOT,
    repository,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir],
    logFile: join(tmp, `server-profile-${protocol}-c${concurrency}.log`),
    readyModels: [model.name],
    env: SERVER_ENV,
  });
  let throughput: number;
  let mainMsPerRequest: number;
  let window: { fromUs: number; toUs: number };
  try {
    const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
    const transport = transportFor(protocol, target, model, concurrency);
    try {
      const edge = () => ({ cpu: server.cpu(), us: Number(process.hrtime.bigint() / 1000n) });
      const { result, before, after } = await closedLoop(transport, concurrency, WARMUP_S * 1000, PROFILE_S * 1000, edge);
      throughput = result.throughput;
      mainMsPerRequest = (after.cpu.mainMs - before.cpu.mainMs) / result.completed;
      window = { fromUs: before.us, toUs: after.us };
    } finally {
      transport.close();
    }
  } finally {
    await server.stop();
  }
  const files = cpuProfiles(dir);
  if (files.length === 0) throw new Error(`no .cpuprofile was written to ${dir}`);
  const threads = files.map((f) => summariseProfile(f, 25, window)).sort((a, b) => a.thread - b.thread);
  log(`profile ${protocol} c=${concurrency}: ${files.length} profile(s), ${fmt(throughput)} req/s under the profiler`);
  return { protocol, concurrency, throughput, serverMainCpuMsPerRequest: mainMsPerRequest, threads };
}

// ---- main ----

/** The gRPC door writes no access line, the REST door does: both off, so the wire format is what differs. */
const SERVER_ENV = { INFERD_LOGGING__ACCESS_LOG: 'false' };

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm run build` first');
  }
  const tmp = mkdtempSync(join(tmpdir(), 'inferd-protocols-'));
  mkdirSync(OUT, { recursive: true });
  const started = new Date();
  const ortVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version;
  log(`temporary files in ${tmp}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const repository = makeRepository(tmp, MODELS.map((m) => ({ name: m.name, onnx: m.onnx, config: m.config })));
  const server = await startServer({ root: ROOT, repository, logFile: join(tmp, 'server.log'), readyModels: MODELS.map((m) => m.name), env: SERVER_ENV });
  log(`server pid ${server.pid}: HTTP ${server.httpPort}, gRPC ${server.grpcPort}`);

  const cells: Cell[] = [];
  const raws: Array<{ run: number; model: string; concurrency: number; points: RawPoint[]; load1: number }> = [];
  const rawSubject = MODELS.find((m) => m.raw !== undefined);
  const rawModel = rawSubject === undefined ? undefined : await startRawModel(rawSubject, join(tmp, 'raw-model.log'));
  const checks: AnswerCheck[] = [];
  let perfRows: PerfAnalyzerRow[] | undefined;
  let perfNote: string | undefined;
  const profiles: ProfileRun[] = [];
  try {
    for (const model of MODELS) checks.push(...(await checkAnswers(server, model)));
    for (const c of checks) log(`answer check ${c.model} ${c.protocol}: max |diff| vs JSON ${c.maxAbsDiffVsJson}, ${c.requestBytes} B up, ${c.responseBytes} B down`);

    for (let run = 1; run <= RUNS; run++) {
      // Rotate the order of protocols from run to run so no protocol always goes first.
      const order = PROTOCOLS.map((_, i) => PROTOCOLS[(i + run - 1) % PROTOCOLS.length]!);
      for (const model of MODELS) {
        for (const concurrency of model.concurrency) {
          if (rawModel === undefined || model.raw === undefined) {
            for (const protocol of order) cells.push(await measure(server, model, protocol, concurrency, run));
            continue;
          }
          // The model alone right before and after every cell: each cell is compared with the
          // mean of the two measurements around it, taken minutes apart at most.
          const rawBatches = Array.from({ length: concurrency }, (_, i) => i + 1);
          const rawSeconds = Math.max(1, DURATION_S / (2 * rawBatches.length));
          const measureRaw = async (): Promise<RawPoint[]> => {
            const points = await rawModel!.measure(rawBatches, rawSeconds);
            raws.push({ run, model: model.name, concurrency, points, load1: load1() });
            log(`run ${run} ${model.name} raw: ${points.map((p) => `b${p.batch} ${fmt(p.rowsPerSecond)} rows/s`).join(', ')}`);
            return points;
          };
          let before = await measureRaw();
          for (const protocol of order) {
            const cell = await measure(server, model, protocol, concurrency, run);
            const after = await measureRaw();
            const perRun = new Map<number, number>();
            const cpuPerRun = new Map<number, number>();
            for (const b of rawBatches) {
              const pair = [before.find((p) => p.batch === b)!, after.find((p) => p.batch === b)!];
              perRun.set(b, (pair[0]!.msPerRun + pair[1]!.msPerRun) / 2);
              cpuPerRun.set(b, (pair[0]!.cpuMsPerRun + pair[1]!.cpuMsPerRun) / 2);
            }
            const raw = rawAtMix(cell, perRun);
            const rawCpu = rawAtMix(cell, cpuPerRun);
            if (rawCpu !== undefined) cell.rawCpuMsPerRow = 1000 / rawCpu;
            if (raw !== undefined) {
              cell.rawAtBatchMix = raw;
              cell.rawBatch1 = 1000 / perRun.get(1)!;
              cell.pctOfRaw = (100 * cell.load.throughput) / raw;
              cell.overheadMs = 1000 / cell.load.throughput - 1000 / raw;
            }
            cells.push(cell);
            before = after;
          }
        }
      }
    }

    const breast = MODELS.find((m) => m.name === 'breast_cancer');
    if (PERF_ANALYZER === undefined) perfNote = 'not run: no --perf-analyzer given';
    else if (breast === undefined) perfNote = 'not run: breast_cancer not selected';
    else {
      const probe = await runCommand(PERF_ANALYZER, ['--version'], 30_000);
      if (probe.code !== 0) perfNote = `not run: '${PERF_ANALYZER} --version' failed: ${probe.out.trim().slice(0, 200)}`;
      else {
        perfNote = probe.out.trim().split('\n')[0];
        perfRows = await perfAnalyzer(PERF_ANALYZER, server, breast, breast.concurrency);
      }
    }
  } finally {
    rawModel?.close();
    await server.stop();
  }

  const mobilenet = MODELS.find((m) => m.name === 'mobilenet_v2');
  if (mobilenet !== undefined) {
    for (const p of PROFILES) profiles.push(await profileProtocol(repository, tmp, mobilenet, p.protocol, p.concurrency));
  }

  const finished = new Date();
  const results = {
    started: started.toISOString(),
    finished: finished.toISOString(),
    command: `npx tsx bench/protocols/run.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', node: process.version, onnxruntimeNode: ortVersion },
    settings: { runs: RUNS, durationSeconds: DURATION_S, warmupSeconds: WARMUP_S, profileSeconds: PROFILE_S },
    load1: cells.map((c) => c.load1),
    checks,
    raws,
    cells,
    perfAnalyzer: { note: perfNote, rows: perfRows },
    profiles,
  };
  writeFileSync(join(OUT, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  const markdown = report(results);
  writeFileSync(join(OUT, 'results.md'), markdown);
  console.log(markdown);
  log(`wrote ${relative(ROOT, join(OUT, 'results.json'))} and results.md`);
}

// ---- report ----

type Results = {
  started: string;
  command: string;
  machine: { cpus: number; cpuModel: string; node: string; onnxruntimeNode: string };
  settings: { runs: number; durationSeconds: number; warmupSeconds: number; profileSeconds: number };
  load1: number[];
  checks: AnswerCheck[];
  raws: Array<{ run: number; model: string; concurrency: number; points: RawPoint[]; load1: number }>;
  cells: Cell[];
  perfAnalyzer: { note?: string; rows?: PerfAnalyzerRow[] };
  profiles: ProfileRun[];
};

const spread = (xs: number[], digits = 0): string => {
  const f = xs.filter(Number.isFinite);
  return f.length > 1 ? ` (${fmt(Math.min(...f), digits)}–${fmt(Math.max(...f), digits)})` : '';
};

function report(r: Results): string {
  const lines: string[] = [];
  const loads = r.load1;
  lines.push(`# Protocol comparison: figures`);
  lines.push('');
  lines.push(
    `Run ${r.started.slice(0, 16).replace('T', ' ')} UTC with \`${r.command}\`: ${r.settings.runs} run(s), each cell ${r.settings.warmupSeconds} s warm-up then ${r.settings.durationSeconds} s measured, closed loop. ` +
      `Machine: ${r.machine.cpus} cores (${r.machine.cpuModel}), shared with other work; Node ${r.machine.node}; onnxruntime-node ${r.machine.onnxruntimeNode}. ` +
      `1-minute load average during the cells: median ${fmt(median(loads), 2)}, range ${fmt(Math.min(...loads), 2)}–${fmt(Math.max(...loads), 2)}. ` +
      `Figures are medians over runs (range in brackets where shown); "% of raw" is taken within each run, then the median is shown.`,
  );
  lines.push('');

  const group = (model: string, protocol: Protocol, concurrency: number) =>
    r.cells.filter((c) => c.model === model && c.protocol === protocol && c.concurrency === concurrency);
  const models = [...new Set(r.cells.map((c) => c.model))];

  for (const model of models) {
    const concurrencies = [...new Set(r.cells.filter((c) => c.model === model).map((c) => c.concurrency))].sort((a, b) => a - b);
    const check = r.checks.filter((c) => c.model === model);
    const hasRaw = r.raws.some((x) => x.model === model);
    lines.push(`## ${model}`);
    lines.push('');
    if (hasRaw) {
      const batches = [...new Set(r.raws.filter((x) => x.model === model).flatMap((x) => x.points.map((p) => p.batch)))].sort((a, b) => a - b);
      lines.push('The model alone (onnxruntime-node `session.run` in one process, same session options), measured right before and after every server cell (all measurements):');
      lines.push('');
      lines.push('| batch | ms per run | CPU ms per run (all threads) | rows/s |');
      lines.push('| ---: | ---: | ---: | ---: |');
      for (const b of batches) {
        const pts = r.raws.filter((x) => x.model === model).flatMap((x) => x.points.filter((p) => p.batch === b));
        const rows = pts.map((p) => p.rowsPerSecond);
        lines.push(`| ${b} | ${fmt3(median(pts.map((p) => p.msPerRun)))} | ${fmt3(median(pts.map((p) => p.cpuMsPerRun)))} | ${fmt(median(rows))}${spread(rows)} |`);
      }
      lines.push('');
    }
    lines.push(
      `| concurrency | protocol | req/s | ${hasRaw ? '% of raw | ' : 'vs JSON | '}p50 ms | p99 ms | request bytes | response bytes | mean batch | server CPU ms/req | main thread ms/req | client CPU ms/req | errors |`,
    );
    lines.push(`| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    for (const concurrency of concurrencies) {
      if (hasRaw) {
        for (const b of [...new Set([1, concurrency])]) {
          const rows = r.raws.filter((x) => x.model === model && x.concurrency === concurrency).flatMap((x) => x.points.filter((p) => p.batch === b));
          const rps = rows.map((p) => p.rowsPerSecond);
          lines.push(`| ${concurrency} | *model alone, batch ${b}* | ${fmt(median(rps))}${spread(rps)} | | ${fmt3(median(rows.map((p) => p.msPerRun)))} | | | | ${b} | | | | |`);
        }
      }
      for (const protocol of PROTOCOLS) {
        const g = group(model, protocol, concurrency);
        if (g.length === 0) continue;
        const tp = g.map((c) => c.load.throughput);
        // Ratios are taken within each run (same machine state), then the median.
        const vsJson = g.map((c) => c.load.throughput / (group(model, 'json', concurrency).find((j) => j.run === c.run)?.load.throughput ?? NaN));
        const ratio = hasRaw
          ? `${fmt(median(g.map((c) => c.pctOfRaw ?? NaN)), 0)}%${spread(g.map((c) => c.pctOfRaw ?? NaN))}`
          : `${fmt(median(vsJson), 2)}×${protocol === 'json' ? '' : spread(vsJson, 2)}`;
        const ch = check.find((c) => c.protocol === protocol);
        lines.push(
          `| ${concurrency} | ${PROTOCOL_LABEL[protocol]} | ${fmt(median(tp))}${spread(tp)} | ${ratio} | ${fmt3(median(g.map((c) => c.load.p50Ms)))} | ${fmt3(median(g.map((c) => c.load.p99Ms)))} | ` +
            `${bytes(ch?.requestBytes ?? g[0]!.load.requestBytes)} | ${bytes(median(g.map((c) => c.load.responseBytes)))} | ${fmt(median(g.map((c) => c.meanBatch)), 2)} | ` +
            `${fmt3(median(g.map((c) => c.serverCpuMsPerRequest)))} | ${fmt3(median(g.map((c) => c.serverMainCpuMsPerRequest)))} | ${fmt3(median(g.map((c) => c.load.clientCpuMsPerRequest)))} | ${g.reduce((n, c) => n + c.load.errors, 0)} |`,
        );
      }
    }
    lines.push('');
    if (check.length > 0) {
      lines.push(
        `Answers: ${check.map((c) => `${PROTOCOL_LABEL[c.protocol]} max |difference| from JSON ${c.maxAbsDiffVsJson}`).join('; ')}.`,
      );
      lines.push('');
    }
    if (hasRaw) {
      lines.push(
        "Against the target (binary REST and gRPC within 10% of the model alone). \"Beyond the model\" is 1/(req/s) − 1/(raw rows/s at the cell's batch sizes); " +
          "\"instance busy\" is the share of the window the model instance spent in session.run (from the statistics extension); \"data plane\" is the mean time a request spent between the door and the answer (queue, batching, model, copies). " +
          "Shares of JSON's are taken within each run, then the median.",
      );
      lines.push('');
      lines.push(
        "| concurrency | protocol | % of raw | within 10%? | instance busy | mean latency ms | data plane ms | model ms per execution in the server | ms/req beyond the model | share of JSON's | main thread CPU ms/req | share of JSON's | CPU ms/req: server + client | model alone CPU ms/row |",
      );
      lines.push('| ---: | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
      for (const concurrency of concurrencies) {
        const json = group(model, 'json', concurrency);
        for (const protocol of PROTOCOLS) {
          const g = group(model, protocol, concurrency);
          if (g.length === 0) continue;
          const pct = median(g.map((c) => c.pctOfRaw ?? NaN));
          const overheadShare = median(g.map((c) => (c.overheadMs ?? NaN) / (json.find((j) => j.run === c.run)?.overheadMs ?? NaN)));
          const mainShare = median(g.map((c) => c.serverMainCpuMsPerRequest / (json.find((j) => j.run === c.run)?.serverMainCpuMsPerRequest ?? NaN)));
          const inferBySize = new Map<number, number[]>();
          for (const c of g) for (const [size, ms] of Object.entries(c.serverInferMs)) inferBySize.set(Number(size), [...(inferBySize.get(Number(size)) ?? []), ms]);
          const infer = [...inferBySize.entries()]
            .sort((a, b) => a[0] - b[0])
            .map(([size, ms]) => `b${size}: ${fmt3(median(ms))}`)
            .join(', ');
          const isJson = protocol === 'json';
          lines.push(
            `| ${concurrency} | ${PROTOCOL_LABEL[protocol]} | ${fmt(pct, 0)}%${spread(g.map((c) => c.pctOfRaw ?? NaN))} | ${isJson ? '-' : pct >= 90 ? 'yes' : 'no'} | ` +
              `${fmt(median(g.map((c) => c.instanceBusyPct)), 0)}% | ${fmt3(median(g.map((c) => c.load.meanMs)))} | ${fmt3(median(g.map((c) => c.dataPlaneMs)))} | ${infer} | ` +
              `${fmt3(median(g.map((c) => c.overheadMs ?? NaN)))} | ${isJson ? '-' : `${fmt(100 * overheadShare, 0)}%`} | ` +
              `${fmt3(median(g.map((c) => c.serverMainCpuMsPerRequest)))} | ${isJson ? '-' : `${fmt(100 * mainShare, 1)}%`} | ` +
              `${fmt3(median(g.map((c) => c.serverCpuMsPerRequest)))} + ${fmt3(median(g.map((c) => c.load.clientCpuMsPerRequest)))} | ${fmt3(median(g.map((c) => c.rawCpuMsPerRow ?? NaN)))} |`,
          );
        }
      }
      lines.push('');
    }
  }

  lines.push('## perf_analyzer (breast_cancer)');
  lines.push('');
  if (r.perfAnalyzer.rows === undefined) lines.push(`perf_analyzer ${r.perfAnalyzer.note ?? 'was not run'}.`);
  else {
    lines.push(
      `${r.perfAnalyzer.note}, batch 1, the same breast_cancer row the other clients send (--input-data); closed loop at each concurrency, or open loop at --perf-analyzer-rate (concurrency shows as its first value); ` +
        `one measurement per row, against the same server after the runs above. Server CPU (all threads, /proc) is sampled for ${r.settings.durationSeconds} s after ${r.settings.warmupSeconds} s of load and divided by perf_analyzer's throughput times that time.`,
    );
    lines.push('');
    lines.push('| concurrency | perf_analyzer protocol | infer/s | p50 ms | p99 ms | avg ms | server CPU ms/req | note |');
    lines.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const row of [...r.perfAnalyzer.rows].sort((a, b) => a.concurrency - b.concurrency)) {
      lines.push(
        `| ${row.concurrency} | ${row.variant} | ${fmt(row.throughput ?? NaN)} | ${fmt3(row.p50Ms ?? NaN)} | ${fmt3(row.p99Ms ?? NaN)} | ${fmt3(row.avgMs ?? NaN)} | ${fmt3(row.serverCpuMsPerRequest ?? NaN)} | ${row.note ?? ''} |`,
      );
    }
  }
  lines.push('');

  if (r.profiles.length > 0) {
    lines.push(`## Server CPU profiles (mobilenet_v2, ${r.settings.profileSeconds} s of load under \`node --cpu-prof\`, self time by function)`);
    lines.push('');
    lines.push('Only the main thread is profiled: the model workers are started without the parent\'s Node flags.');
    lines.push('');
    for (const p of r.profiles) {
      lines.push(
        `### ${PROTOCOL_LABEL[p.protocol]}, concurrency ${p.concurrency}: ${fmt(p.throughput)} req/s under the profiler, main thread ${fmt3(p.serverMainCpuMsPerRequest)} ms CPU per request`,
      );
      lines.push('');
      for (const t of p.threads) {
        lines.push(profileMarkdown(t, t.thread === 0 ? 15 : 6));
        lines.push('');
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

if (flags.report !== undefined) process.stdout.write(report(JSON.parse(readFileSync(flags.report, 'utf8')) as Results));
else await main();
