/**
 * Drives a server with Triton's perf_analyzer (a C++ load generator, so the client is not what
 * limits a small request) and measures the server's CPU per call while it runs.
 *
 * perf_analyzer measures in windows until three agree, so its own request counts cover only part
 * of its run. The server's CPU is therefore sampled over a fixed stretch in the middle of the run,
 * after a warm-up, and divided by the calls perf_analyzer reports it completed per second times
 * the length of that stretch (open loop at a fixed rate, so that rate holds throughout).
 *
 * `bash scripts/setup/perf-analyzer.sh` installs perf_analyzer and prints the wrapper to pass.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PerfAnalyzerLoad {
  /** The perf_analyzer executable (or the wrapper the setup script prints). */
  command: string;
  protocol: 'http' | 'grpc';
  /** host:port */
  url: string;
  model: string;
  /** Open loop at this many requests per second, or closed loop at this concurrency. */
  rate?: number;
  concurrency?: number;
  /** A perf_analyzer --input-data JSON file, or 'random' / 'zero'. */
  inputData: string;
  /** HTTP only: 'json' (REST + JSON tensors) or 'binary' (the binary tensor extension). */
  tensorFormat?: 'json' | 'binary';
  /** Length of one perf_analyzer measurement window, ms. */
  windowMs: number;
  /** Threads perf_analyzer may use to keep an open-loop rate (its default is 4). */
  maxThreads?: number;
}

export interface PerfAnalyzerResult {
  code: number | null;
  /** From its CSV: the stable windows it reports. */
  throughput?: number;
  p50Us?: number;
  p99Us?: number;
  avgUs?: number;
  /** Share of requests it sent late (it could not keep the rate), percent. */
  delayedPct?: number;
  output: string;
}

/** The perf_analyzer arguments for one load. */
export function perfAnalyzerArgs(load: PerfAnalyzerLoad, csv: string): string[] {
  const args = ['-m', load.model, '-i', load.protocol, '-u', load.url, '--input-data', load.inputData, '-p', String(load.windowMs), '-f', csv];
  if (load.rate !== undefined) args.push('--request-rate-range', `${load.rate}:${load.rate}:1`, '--max-threads', String(load.maxThreads ?? 16));
  else args.push('--concurrency-range', String(load.concurrency ?? 1));
  if (load.protocol === 'http') {
    const format = load.tensorFormat ?? 'json';
    args.push('--input-tensor-format', format, '--output-tensor-format', format);
  }
  // Stability is not what is measured (the CPU is sampled apart, and latency on a shared machine
  // jumps around): three windows within 1000% of each other will do. -v prints every window.
  args.push('-s', '1000', '-r', '6', '-v');
  return args;
}

function parseOutput(csv: string, output: string): Omit<PerfAnalyzerResult, 'code' | 'output'> {
  const out: Omit<PerfAnalyzerResult, 'code' | 'output'> = {};
  if (existsSync(csv)) {
    const [head, ...lines] = readFileSync(csv, 'utf8').trim().split('\n');
    const cols = head!.split(',');
    const line = lines[0]?.split(',') ?? [];
    const col = (name: string): number | undefined => {
      const i = cols.indexOf(name);
      return i < 0 ? undefined : Number(line[i]);
    };
    out.throughput = col('Inferences/Second');
    out.p50Us = col('p50 latency');
    out.p99Us = col('p99 latency');
  } else {
    // No stable measurement: the median of the windows it took.
    const passes = [...output.matchAll(/Pass \[\d+\] throughput: ([\d.]+) infer\/sec/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
    if (passes.length > 0) out.throughput = passes[Math.floor(passes.length / 2)];
  }
  const avg = /Avg latency: (\d+) usec/.exec(output);
  if (avg) out.avgUs = Number(avg[1]);
  const delayed = /([\d.]+)% of the requests were delayed/.exec(output);
  out.delayedPct = delayed ? Number(delayed[1]) : 0;
  return out;
}

/**
 * Runs perf_analyzer once. `during` is called with a promise that settles when it exits, after
 * the run has started; what it returns is handed back with the result.
 */
export async function runPerfAnalyzer<T>(
  load: PerfAnalyzerLoad,
  during: (exited: Promise<void>) => Promise<T>,
  timeoutMs = 300_000,
): Promise<{ result: PerfAnalyzerResult; measured: T }> {
  const csv = join(mkdtempSync(join(tmpdir(), 'inferd-pa-')), 'pa.csv');
  const child = spawn(load.command, perfAnalyzerArgs(load, csv), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((res) => {
    child.on('error', (e) => {
      output += String(e);
      res(-1);
    });
    child.on('exit', (code) => res(code));
  }).finally(() => clearTimeout(timer));
  const measured = await during(exited.then(() => undefined));
  const code = await exited;
  return { result: { code, output, ...parseOutput(csv, output) }, measured };
}

/** CPU seconds a process has used so far, all its threads (utime + stime from /proc). */
export function processCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks, USER_HZ 100
}

export interface CpuPerCall {
  /** Server CPU per call, µs. */
  cpuUs: number;
  /** Calls per second perf_analyzer completed. */
  throughput: number;
  /** Seconds over which the server's CPU was sampled. */
  seconds: number;
  p50Us?: number;
  p99Us?: number;
  delayedPct?: number;
  result: PerfAnalyzerResult;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Server CPU per call under perf_analyzer's open-loop load: the server's CPU over `seconds`
 * (after `warmupSeconds`), divided by perf_analyzer's throughput times the seconds sampled.
 * The windows are sized so perf_analyzer runs past the sampled stretch.
 */
export async function cpuPerCall(
  load: Omit<PerfAnalyzerLoad, 'windowMs'>,
  serverPid: number,
  seconds: number,
  warmupSeconds = 1.5,
): Promise<CpuPerCall> {
  // Three windows at least are measured after a short start: make them outlast the sample.
  const windowMs = Math.ceil(((warmupSeconds + seconds + 0.5) * 1000) / 3);
  const { result, measured } = await runPerfAnalyzer({ ...load, windowMs }, async (exited) => {
    let done = false;
    void exited.then(() => (done = true));
    await Promise.race([sleep(warmupSeconds * 1000), exited]);
    const start = process.hrtime.bigint();
    const before = processCpuSeconds(serverPid);
    await Promise.race([sleep(seconds * 1000), exited]);
    const used = processCpuSeconds(serverPid) - before;
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    return { used, elapsed, early: done };
  });
  if (result.throughput === undefined) {
    const reason = result.output.split('\n').find((l) => /error|fail/i.test(l)) ?? result.output.trim().split('\n').pop() ?? '';
    throw new Error(`perf_analyzer exited ${result.code}: ${reason.trim().slice(0, 300)}`);
  }
  if (measured.early) throw new Error('perf_analyzer finished before the CPU sample did; raise the window');
  return {
    cpuUs: (measured.used / (result.throughput * measured.elapsed)) * 1e6,
    throughput: result.throughput,
    seconds: measured.elapsed,
    ...(result.p50Us !== undefined ? { p50Us: result.p50Us } : {}),
    ...(result.p99Us !== undefined ? { p99Us: result.p99Us } : {}),
    ...(result.delayedPct !== undefined ? { delayedPct: result.delayedPct } : {}),
    result,
  };
}

/** A perf_analyzer --input-data file holding one row of `values` for input `name`. */
export function perfAnalyzerInput(name: string, values: ArrayLike<number>, rowShape: number[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'inferd-pa-input-')), 'input.json');
  // perf_analyzer reads FP32 content only from JSON numbers written as floats: 1001.0, not 1001.
  const content = Array.from(values, (v) => (Number.isInteger(v) ? v.toFixed(1) : String(v))).join(',');
  writeFileSync(file, `{"data":[{${JSON.stringify(name)}:{"content":[${content}],"shape":${JSON.stringify(rowShape)}}}]}`);
  return file;
}
