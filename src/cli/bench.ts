/**
 * `inferd bench`: a load generator for any Open Inference Protocol server (inferd, Triton,
 * MLServer, KServe runtimes), in the manner of perf_analyzer.
 */
import { writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  formatProgress,
  formatTable,
  parseRange,
  parseShapeArg,
  runBench,
  toCsv,
  type BenchOptions,
  type LoadMode,
  type ProgressEvent,
} from '../loadgen/index.js';
import { readRawBody } from '../loadgen/runner.js';

interface BenchCliOptions {
  model?: string;
  modelVersion?: string;
  url?: string;
  protocol: 'http' | 'grpc';
  concurrencyRange?: string;
  requestRateRange?: string;
  requestDistribution: 'poisson' | 'constant';
  windowMs: number;
  stabilityPercent: number;
  maxTrials: number;
  windows?: number;
  warmupMs: number;
  inputData: string;
  exclude: string[];
  batchSize?: number;
  shape: string[];
  binary?: boolean;
  header: string[];
  seed: number;
  json?: string;
  csv?: string;
  progress: boolean;
  rawUrl?: string;
  rawBody?: string;
  rawMethod: string;
  rawContentType: string;
  httpClient: 'raw' | 'node';
  maxConnections: number;
  timeoutMs: number;
  grpcChannels: number;
  grpcClient: 'h2' | 'grpc-js';
  proto?: string;
  serverStats: boolean;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];
}

function collectWhole(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Turns parsed CLI options into run options; throws on inconsistent combinations. */
export function benchOptionsFromCli(o: BenchCliOptions): BenchOptions {
  if (o.concurrencyRange && o.requestRateRange) {
    throw new InvalidArgumentError('--concurrency-range and --request-rate-range are exclusive');
  }
  const load: LoadMode = o.requestRateRange
    ? {
        kind: 'rate',
        values: parseRange(o.requestRateRange, { integer: false, what: '--request-rate-range' }),
        distribution: o.requestDistribution,
      }
    : { kind: 'concurrency', values: parseRange(o.concurrencyRange ?? '1', { integer: true, what: '--concurrency-range' }) };
  if (!o.rawUrl && !o.model) throw new InvalidArgumentError('-m/--model is required (or --raw-url with --raw-body)');
  if (o.rawUrl && !o.rawBody) throw new InvalidArgumentError('--raw-url needs --raw-body');
  if (o.header.length > 0 && o.protocol === 'grpc') {
    throw new InvalidArgumentError('--header applies to HTTP; over gRPC send metadata with a gRPC client of your own');
  }
  const headers: Record<string, string> = {};
  for (const h of o.header) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new InvalidArgumentError(`--header takes 'Name: value', got '${h}'`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  const shapes: Record<string, number[]> = {};
  for (const s of o.shape) {
    const { name, shape } = parseShapeArg(s);
    shapes[name] = shape;
  }
  return {
    url: o.url ?? (o.protocol === 'grpc' ? '127.0.0.1:8001' : 'http://127.0.0.1:8000'),
    protocol: o.protocol,
    model: o.model,
    modelVersion: o.modelVersion,
    load,
    windowMs: o.windowMs,
    stabilityPercent: o.stabilityPercent,
    maxTrials: o.maxTrials,
    windows: o.windows,
    warmupMs: o.warmupMs,
    inputData: o.inputData,
    exclude: o.exclude,
    batchSize: o.batchSize,
    shapes,
    binary: o.binary ?? false,
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
    seed: o.seed,
    raw: o.rawUrl
      ? { url: o.rawUrl, body: readRawBody(o.rawBody!), method: o.rawMethod, contentType: o.rawContentType }
      : undefined,
    httpClient: o.httpClient,
    maxConnections: o.maxConnections,
    timeoutMs: o.timeoutMs,
    grpcChannels: o.grpcChannels,
    grpcClient: o.grpcClient,
    protoPath: o.proto,
    serverStats: o.serverStats,
  };
}

/** Progress on stderr: one rewritten line on a terminal, one line per window otherwise. */
function progressPrinter(enabled: boolean): { onProgress?: (e: ProgressEvent) => void; done(): void } {
  if (!enabled) return { done: () => {} };
  const tty = process.stderr.isTTY === true;
  let width = 0;
  return {
    onProgress: (e) => {
      const text = formatProgress(e);
      if (tty) {
        process.stderr.write(`\r${text.padEnd(width)}`);
        width = text.length;
      } else if (e.finished) {
        process.stderr.write(`${text}\n`);
      }
    },
    done: () => {
      if (tty && width > 0) process.stderr.write(`\r${' '.repeat(width)}\r`);
    },
  };
}

export function registerBenchCommand(program: Command): Command {
  return program
    .command('bench')
    .description('Drive an Open Inference Protocol server (inferd, Triton, MLServer...) with load and report throughput and latency')
    .option('-m, --model <name>', 'model to benchmark')
    .option('-x, --model-version <version>', 'model version (default: the server picks)')
    .option('-u, --url <url>', 'server URL (default http://127.0.0.1:8000, or 127.0.0.1:8001 for gRPC)')
    .addOption(new Option('-i, --protocol <protocol>', 'wire protocol').choices(['http', 'grpc']).default('http'))
    .option('--concurrency-range <range>', 'closed loop: requests in flight, as start:end:step, start:end:xF or a list (default 1)')
    .option('--request-rate-range <range>', 'open loop: requests per second, same forms as --concurrency-range')
    .addOption(
      new Option('--request-distribution <kind>', 'open-loop send schedule').choices(['poisson', 'constant']).default('poisson'),
    )
    .option('--window-ms <ms>', 'measurement window', positiveInt, 2000)
    .option('--stability-percent <pct>', 'the last 3 windows must agree on throughput and p99 within this', positiveNumber, 10)
    .option('--max-trials <n>', 'windows at most per step while waiting for stability', positiveInt, 10)
    .option('--windows <n>', 'measure exactly this many windows per step, no stability check', positiveInt)
    .option('--warmup-ms <ms>', 'unmeasured load before the first window of each step', nonNegativeInt, 0)
    .option('--input-data <source>', 'random, or a .csv (header row, numeric columns) or .json file', 'random')
    .option('--exclude <columns>', 'CSV columns to leave out, e.g. label (repeatable, comma-separated)', collect, [])
    .option('-b, --batch-size <n>', 'size of a dynamic first dimension (samples per request)', positiveInt)
    .option('--shape <name:dims>', 'shape of an input with dynamic dimensions, e.g. features:1,30 (repeatable)', collectWhole, [])
    .option('--binary', 'binary tensor extension over HTTP; raw_input_contents over gRPC')
    .option('-H, --header <header>', "extra HTTP request header, 'Name: value' (repeatable), e.g. credentials", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--seed <n>', 'seed of random input data and of the Poisson schedule', nonNegativeInt, 1)
    .option('--json <file>', 'write the full report as JSON')
    .option('--csv <file>', 'write one CSV row per load step')
    .option('--no-progress', 'no progress on stderr')
    .option('--raw-url <url>', 'drive a non-OIP endpoint with a fixed body instead (no metadata, no stats)')
    .option('--raw-body <file>', 'request body for --raw-url')
    .option('--raw-method <method>', 'HTTP method for --raw-url', 'POST')
    .option('--raw-content-type <type>', 'Content-Type for --raw-url', 'application/json')
    .addOption(
      new Option('--http-client <kind>', 'raw: minimal keep-alive client (least CPU); node: node:http')
        .choices(['raw', 'node'])
        .default('raw'),
    )
    .option('--max-connections <n>', 'connection cap in request-rate mode', positiveInt, 512)
    .option('--timeout-ms <ms>', 'per-request timeout, 0 for none', nonNegativeInt, 30_000)
    .option('--grpc-channels <n>', 'HTTP/2 connections for gRPC', positiveInt, 1)
    .addOption(
      new Option('--grpc-client <kind>', 'h2: unary calls straight on node:http2 (least CPU); grpc-js: @grpc/grpc-js')
        .choices(['h2', 'grpc-js'])
        .default('h2'),
    )
    .option('--proto <file>', 'OIP grpc_service.proto (default: the one shipped with inferd)')
    .option('--no-server-stats', 'do not read /v2/models/{m}/stats')
    .addHelpText(
      'after',
      `
Examples:
  inferd bench -m breast_cancer --concurrency-range 1:64:x2
  inferd bench -m mobilenet_v2 --concurrency-range 1,8 --windows 3 --json out.json
  inferd bench -m breast_cancer --request-rate-range 100:1000:300 --request-distribution constant
  inferd bench -m breast_cancer --input-data data.csv --exclude label --batch-size 8
  inferd bench -m breast_cancer -i grpc -u 127.0.0.1:8001 --binary
  inferd bench --raw-url http://127.0.0.1:9000/predict --raw-body body.json --concurrency-range 16`,
    )
    .action(async (_opts: unknown, cmd: Command) => {
      const o = cmd.opts<BenchCliOptions>();
      let options: BenchOptions;
      try {
        options = benchOptionsFromCli(o);
      } catch (e) {
        cmd.error(`error: ${(e as Error).message}`, { exitCode: 2 });
      }
      const progress = progressPrinter(o.progress);
      const abort = new AbortController();
      const onSigint = (): void => abort.abort();
      process.once('SIGINT', onSigint);
      try {
        const report = await runBench({ ...options, onProgress: progress.onProgress, signal: abort.signal });
        progress.done();
        const what = report.protocol === 'raw' ? report.target : `${report.model} at ${report.target} (${report.protocol})`;
        process.stdout.write(
          `${what}, ${report.inferencesPerRequest} inference(s)/request, ${report.payloadBytes} B/request${
            report.serverStats ? ', server stats' : ''
          }\n`,
        );
        process.stdout.write(formatTable(report));
        if (report.steps.some((s) => !s.stable)) {
          process.stderr.write('warning: some steps did not stabilize; their figures combine the last 3 windows\n');
        }
        if (o.json) writeFileSync(o.json, `${JSON.stringify(report, null, 2)}\n`);
        if (o.csv) writeFileSync(o.csv, toCsv(report));
      } catch (e) {
        progress.done();
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSigint);
      }
    });
}
