/**
 * A benchmark run: prepare requests once, then for each load step (a concurrency or a request
 * rate) measure windows until the figures are stable or the trial budget is spent.
 */
import { readFileSync } from 'node:fs';
import { LatencyHistogram, type LatencySummary } from './histogram.js';
import { batchOf, buildInputs } from './inputs.js';
import { encodeBinaryRequest, encodeJsonRequest } from './payload.js';
import {
  encodeHttpRequest,
  NodeHttpTransport,
  parseTarget,
  RawHttpTransport,
  type HttpRequestSpec,
  type HttpTarget,
} from './http-client.js';
import {
  encodeGrpcRequest,
  grpcAddress,
  grpcModelMetadata,
  grpcStatsSource,
  GrpcJsTransport,
  Http2GrpcTransport,
  loadService,
} from './grpc.js';
import { ClosedLoopDriver, OpenLoopDriver, WindowCounters, type Distribution, type Driver } from './load.js';
import { isStable, STABILITY_SPAN } from './stability.js';
import { httpStatsSource, mergeSplits, statsDelta, type InferenceStats, type ServerSplit, type StatsSource } from './stats.js';
import type { ModelMetadata, Protocol, RequestInputs, TensorSpec, Transport } from './types.js';

export type LoadMode =
  | { readonly kind: 'concurrency'; readonly values: readonly number[] }
  | { readonly kind: 'rate'; readonly values: readonly number[]; readonly distribution: Distribution };

/** A non-OIP endpoint driven with one fixed body, e.g. a FastAPI `/predict` route. */
export interface RawTarget {
  readonly url: string;
  readonly body: Buffer;
  readonly method?: string;
  readonly contentType?: string;
}

export interface BenchOptions {
  /** Server base URL (`http://host:port`), or `host:port` for gRPC. */
  readonly url: string;
  readonly protocol: Protocol;
  /** Required except in raw mode. */
  readonly model?: string;
  readonly modelVersion?: string;
  readonly load: LoadMode;
  readonly windowMs: number;
  readonly stabilityPercent: number;
  readonly maxTrials: number;
  /** Fixed number of windows per step instead of waiting for stability. */
  readonly windows?: number;
  /** Load applied before the first window of each step, not measured. */
  readonly warmupMs?: number;
  /** `random`, or a .csv or .json file. */
  readonly inputData?: string;
  readonly exclude?: readonly string[];
  readonly batchSize?: number;
  readonly shapes?: Readonly<Record<string, readonly number[]>>;
  /** Binary tensor extension over HTTP, raw_input_contents over gRPC. */
  readonly binary?: boolean;
  /** Extra request headers (credentials, a correlation id...); HTTP only. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly seed?: number;
  readonly raw?: RawTarget;
  /** `raw`: the built-in minimal HTTP/1.1 client; `node`: node:http. */
  readonly httpClient?: 'raw' | 'node';
  /** Connection cap in request-rate mode (concurrency mode opens one per loop). */
  readonly maxConnections?: number;
  readonly timeoutMs?: number;
  readonly grpcChannels?: number;
  /** `h2`: unary calls straight on node:http2 (least CPU); `grpc-js`: @grpc/grpc-js. */
  readonly grpcClient?: 'h2' | 'grpc-js';
  readonly protoPath?: string;
  /** Read server statistics when the server has them (default true). */
  readonly serverStats?: boolean;
  readonly onProgress?: (e: ProgressEvent) => void;
  /** Stops the run between windows. */
  readonly signal?: AbortSignal;
}

export interface ProgressEvent {
  readonly step: string;
  readonly stepIndex: number;
  readonly stepCount: number;
  /** 1-based window number; 0 during warm-up. */
  readonly window: number;
  readonly windowLimit: number;
  readonly elapsedMs: number;
  readonly windowMs: number;
  /** Successes per second so far in the current window. */
  readonly throughput: number;
  readonly errors: number;
  /** Set when a window has just ended. */
  readonly finished?: WindowResult;
}

export interface WindowResult {
  readonly durationMs: number;
  readonly sent: number;
  readonly successes: number;
  readonly errorCount: number;
  /** Successful requests per second. */
  readonly throughput: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly lateSends: number;
}

export interface StepResult {
  readonly concurrency?: number;
  readonly requestRate?: number;
  /** Windows that the figures below combine (the last three when stable). */
  readonly measuredWindows: number;
  readonly trials: number;
  readonly stable: boolean;
  readonly durationMs: number;
  readonly successes: number;
  readonly errorCount: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorSamples: Readonly<Record<string, string>>;
  /** Successful requests per second. */
  readonly throughput: number;
  /** throughput times inferences per request. */
  readonly inferencesPerSec: number;
  readonly latency: LatencySummary;
  readonly sent: number;
  readonly lateSends: number;
  readonly maxLateMs: number;
  readonly server?: ServerSplit;
  /** Mean client latency minus the server's request time: network, HTTP and queues outside the model. */
  readonly overheadUs?: number;
  readonly windows: readonly WindowResult[];
}

export interface BenchReport {
  readonly tool: 'inferd bench';
  readonly startedAt: string;
  readonly target: string;
  readonly protocol: Protocol | 'raw';
  readonly model?: string;
  readonly mode: 'concurrency' | 'request-rate';
  readonly distribution?: Distribution;
  readonly inferencesPerRequest: number;
  readonly binary: boolean;
  readonly inputs?: readonly { name: string; datatype: string; shape: readonly number[] }[];
  readonly payloadBytes: number;
  readonly windowMs: number;
  readonly stabilityPercent?: number;
  readonly serverStats: boolean;
  readonly steps: readonly StepResult[];
}

export class BenchError extends Error {}

function modelPath(model: string, version: string | undefined): string {
  return `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${encodeURIComponent(version)}` : ''}`;
}

function toSpecs(v: unknown): TensorSpec[] {
  if (!Array.isArray(v)) return [];
  return v.map((t: Record<string, unknown>) => ({
    name: String(t['name']),
    datatype: String(t['datatype']),
    shape: Array.isArray(t['shape']) ? t['shape'].map(Number) : [],
  }));
}

export async function httpModelMetadata(baseUrl: string, model: string, version?: string, headers: Readonly<Record<string, string>> = {}): Promise<ModelMetadata> {
  const url = `${baseUrl.replace(/\/+$/, '')}${modelPath(model, version)}`;
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new BenchError(`cannot reach ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (!res.ok) throw new BenchError(`GET ${url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
  const doc = (await res.json()) as Record<string, unknown>;
  return {
    name: String(doc['name'] ?? model),
    versions: Array.isArray(doc['versions']) ? doc['versions'].map(String) : [],
    platform: String(doc['platform'] ?? ''),
    inputs: toSpecs(doc['inputs']),
    outputs: toSpecs(doc['outputs']),
  };
}

interface Prepared {
  makeTransport(connections: number): Transport;
  stats?: StatsSource;
  inputs?: RequestInputs;
  inferencesPerRequest: number;
  payloadBytes: number;
  protocol: Protocol | 'raw';
  target: string;
  close(): void;
}

function httpTransport(
  kind: 'raw' | 'node',
  target: HttpTarget,
  specs: HttpRequestSpec[],
  connections: number,
  timeoutMs: number,
): Transport {
  const o = { maxConnections: connections, timeoutMs };
  return kind === 'node'
    ? new NodeHttpTransport(target, specs, o)
    : new RawHttpTransport(
        target,
        specs.map((s) => encodeHttpRequest(target, s)),
        o,
      );
}

async function prepare(opts: BenchOptions): Promise<Prepared> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const client = opts.httpClient ?? 'raw';
  if (opts.raw) {
    const target = parseTarget(opts.raw.url);
    const u = new URL(/^[a-z]+:\/\//i.test(opts.raw.url) ? opts.raw.url : `http://${opts.raw.url}`);
    const base: HttpTarget = { ...target, basePath: '' };
    const spec: HttpRequestSpec = {
      method: opts.raw.method ?? 'POST',
      path: `${u.pathname}${u.search}`,
      headers: { 'Content-Type': opts.raw.contentType ?? 'application/json', ...opts.headers },
      body: opts.raw.body,
    };
    return {
      makeTransport: (n) => httpTransport(client, base, [spec], n, timeoutMs),
      inferencesPerRequest: opts.batchSize ?? 1,
      payloadBytes: opts.raw.body.length,
      protocol: 'raw',
      target: opts.raw.url,
      close: () => {},
    };
  }
  const model = opts.model;
  if (!model) throw new BenchError('a model name is required (-m)');
  const useStats = opts.serverStats ?? true;
  if (opts.protocol === 'grpc') {
    const svc = loadService(opts.protoPath);
    const address = grpcAddress(opts.url);
    let meta: ModelMetadata;
    try {
      meta = await grpcModelMetadata(svc, address, model, opts.modelVersion);
    } catch (e) {
      throw new BenchError(`ModelMetadata for ${model} at ${address} failed: ${(e as Error).message}`);
    }
    const all = buildInputs(meta.inputs, inputOptions(opts));
    const bodies = all.map((inp) => encodeGrpcRequest(svc, model, opts.modelVersion, inp, opts.binary ?? false));
    const stats = useStats ? grpcStatsSource(svc, address, model, opts.modelVersion) : undefined;
    return {
      makeTransport: () => {
        const o = { channels: opts.grpcChannels ?? 1, timeoutMs };
        return opts.grpcClient === 'grpc-js'
          ? new GrpcJsTransport(svc, address, bodies, o)
          : new Http2GrpcTransport(svc, address, bodies, o);
      },
      stats,
      inputs: all[0],
      inferencesPerRequest: batchOf(meta.inputs, all[0]!),
      payloadBytes: bodies[0]!.length,
      protocol: 'grpc',
      target: address,
      close: () => stats?.close(),
    };
  }
  const target = parseTarget(opts.url);
  const baseUrl = `${target.secure ? 'https' : 'http'}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}${target.basePath}`;
  const meta = await httpModelMetadata(baseUrl, model, opts.modelVersion, opts.headers);
  const all = buildInputs(meta.inputs, inputOptions(opts));
  const path = `${modelPath(model, opts.modelVersion)}/infer`;
  const specs = all.map((inp): HttpRequestSpec => {
    if (opts.binary) {
      const b = encodeBinaryRequest(inp, { binaryOutput: true });
      return {
        method: 'POST',
        path,
        headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(b.headerLength), ...opts.headers },
        body: b.body,
      };
    }
    return { method: 'POST', path, headers: { 'Content-Type': 'application/json', ...opts.headers }, body: encodeJsonRequest(inp) };
  });
  return {
    makeTransport: (n) => httpTransport(client, target, specs, n, timeoutMs),
    stats: useStats ? httpStatsSource(baseUrl, model, opts.modelVersion, opts.headers) : undefined,
    inputs: all[0],
    inferencesPerRequest: batchOf(meta.inputs, all[0]!),
    payloadBytes: specs[0]!.body!.length,
    protocol: 'http',
    target: baseUrl,
    close: () => {},
  };
}

function inputOptions(opts: BenchOptions) {
  return {
    source: opts.inputData ?? 'random',
    exclude: opts.exclude,
    batchSize: opts.batchSize,
    shapes: opts.shapes,
    seed: opts.seed,
  };
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

async function readStats(src: StatsSource | undefined): Promise<InferenceStats | undefined> {
  if (!src) return undefined;
  try {
    return await src.fetch();
  } catch {
    return undefined;
  }
}

function windowResult(c: WindowCounters, durationMs: number): WindowResult {
  return {
    durationMs: Math.round(durationMs),
    sent: c.sent,
    successes: c.successes,
    errorCount: c.errorCount,
    throughput: (c.successes * 1000) / durationMs,
    p50Us: c.latency.percentile(50),
    p99Us: c.latency.percentile(99),
    lateSends: c.lateSends,
  };
}

interface MeasuredWindow {
  readonly counters: WindowCounters;
  readonly result: WindowResult;
  readonly server?: ServerSplit;
}

function combine(
  step: { concurrency?: number; requestRate?: number },
  windows: readonly MeasuredWindow[],
  used: readonly MeasuredWindow[],
  stable: boolean,
  inferencesPerRequest: number,
): StepResult {
  const hist = LatencyHistogram.merge(used.map((w) => w.counters.latency));
  const durationMs = used.reduce((a, w) => a + w.result.durationMs, 0);
  const errors: Record<string, number> = {};
  const errorSamples: Record<string, string> = {};
  let successes = 0;
  let sent = 0;
  let lateSends = 0;
  let maxLateMs = 0;
  for (const w of used) {
    successes += w.counters.successes;
    sent += w.counters.sent;
    lateSends += w.counters.lateSends;
    maxLateMs = Math.max(maxLateMs, w.counters.maxLateMs);
    for (const [k, v] of w.counters.errors) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of w.counters.errorSamples) errorSamples[k] ??= v;
  }
  const throughput = durationMs > 0 ? (successes * 1000) / durationMs : 0;
  const latency = hist.summary();
  const server = mergeSplits(used.map((w) => w.server));
  return {
    ...step,
    measuredWindows: used.length,
    trials: windows.length,
    stable,
    durationMs,
    successes,
    errorCount: Object.values(errors).reduce((a, b) => a + b, 0),
    errors,
    errorSamples,
    throughput,
    inferencesPerSec: throughput * inferencesPerRequest,
    latency,
    sent,
    lateSends,
    maxLateMs: Math.round(maxLateMs * 10) / 10,
    ...(server ? { server, overheadUs: Math.max(0, latency.meanUs - server.requestUs) } : {}),
    windows: windows.map((w) => w.result),
  };
}

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  if (opts.windowMs <= 0) throw new BenchError('the window must be positive');
  const prepared = await prepare(opts);
  const startedAt = new Date().toISOString();
  let statsAvailable = false;
  if (prepared.stats) statsAvailable = (await readStats(prepared.stats)) !== undefined;
  const stats = statsAvailable ? prepared.stats : undefined;
  const steps: StepResult[] = [];
  const values = opts.load.values;
  try {
    for (let si = 0; si < values.length && !opts.signal?.aborted; si++) {
      const value = values[si]!;
      const label = opts.load.kind === 'concurrency' ? `concurrency ${value}` : `rate ${value}/s`;
      const transport = prepared.makeTransport(
        opts.load.kind === 'concurrency' ? value : (opts.maxConnections ?? 512),
      );
      const driver: Driver =
        opts.load.kind === 'concurrency'
          ? new ClosedLoopDriver(transport, value)
          : new OpenLoopDriver(transport, value, opts.load.distribution, (opts.seed ?? 1) + si);
      const windowLimit = opts.windows ?? opts.maxTrials;
      let windowNo = 0;
      let windowStart = performance.now();
      const ticker = opts.onProgress
        ? setInterval(() => {
            const c = driver.current;
            const el = performance.now() - windowStart;
            opts.onProgress!({
              step: label,
              stepIndex: si,
              stepCount: values.length,
              window: windowNo,
              windowLimit,
              elapsedMs: el,
              windowMs: windowNo === 0 ? (opts.warmupMs ?? 0) : opts.windowMs,
              throughput: el > 0 ? (c.successes * 1000) / el : 0,
              errors: c.errorCount,
            });
          }, 250)
        : undefined;
      const windows: MeasuredWindow[] = [];
      let stable = false;
      try {
        driver.start();
        if ((opts.warmupMs ?? 0) > 0) await sleep(opts.warmupMs!, opts.signal);
        let before = await readStats(stats);
        driver.swap();
        windowStart = performance.now();
        while (windows.length < windowLimit && !opts.signal?.aborted) {
          windowNo = windows.length + 1;
          await sleep(opts.windowMs, opts.signal);
          const counters = driver.swap();
          const end = performance.now();
          const result = windowResult(counters, end - windowStart);
          windowStart = end;
          const after = await readStats(stats);
          const server = before && after ? statsDelta(before, after) : undefined;
          before = after;
          windows.push({ counters, result, server });
          opts.onProgress?.({
            step: label,
            stepIndex: si,
            stepCount: values.length,
            window: windowNo,
            windowLimit,
            elapsedMs: result.durationMs,
            windowMs: opts.windowMs,
            throughput: result.throughput,
            errors: result.errorCount,
            finished: result,
          });
          if (opts.windows === undefined && isStable(windows.map((w) => w.result), opts.stabilityPercent)) {
            stable = true;
            break;
          }
        }
      } finally {
        if (ticker) clearInterval(ticker);
        driver.stop();
        await transport.close();
      }
      if (windows.length === 0) break;
      const used = opts.windows !== undefined ? windows : windows.slice(-STABILITY_SPAN);
      const step = opts.load.kind === 'concurrency' ? { concurrency: value } : { requestRate: value };
      steps.push(combine(step, windows, used, opts.windows !== undefined ? true : stable, prepared.inferencesPerRequest));
    }
  } finally {
    prepared.close();
  }
  return {
    tool: 'inferd bench',
    startedAt,
    target: prepared.target,
    protocol: prepared.protocol,
    ...(opts.model && !opts.raw ? { model: opts.model } : {}),
    mode: opts.load.kind === 'concurrency' ? 'concurrency' : 'request-rate',
    ...(opts.load.kind === 'rate' ? { distribution: opts.load.distribution } : {}),
    inferencesPerRequest: prepared.inferencesPerRequest,
    binary: opts.binary ?? false,
    ...(prepared.inputs ? { inputs: prepared.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })) } : {}),
    payloadBytes: prepared.payloadBytes,
    windowMs: opts.windowMs,
    ...(opts.windows === undefined ? { stabilityPercent: opts.stabilityPercent } : {}),
    serverStats: statsAvailable,
    steps,
  };
}

/** Reads a raw-mode body from a file. */
export function readRawBody(file: string): Buffer {
  return readFileSync(file);
}
