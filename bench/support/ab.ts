/**
 * A/B throughput of two inferd servers (two builds, or one build with two configurations):
 * breast_cancer at one concurrency over REST and/or gRPC, rounds alternating A, B, B, A... so
 * that both meet the same machine load; medians and the ratio B / A, measured in one run.
 * The load generator is the project's own `inferd bench`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { freePort } from '../../test/support/ports.js';
import { serverNodeFlags } from './node-flags.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface Side {
  /** Checkout whose bin/inferd.js serves (built). */
  checkout: string;
  /** Configuration file passed with --config. */
  config?: string;
  /** Extra HTTP headers the load generator sends (credentials). */
  headers?: Record<string, string>;
  env?: Record<string, string>;
  /** Node flags for this side's server (after the checkout's own). */
  nodeArgs?: string[];
}

export interface AbOptions {
  a: Side;
  b: Side;
  rounds: number;
  seconds: number;
  concurrency: number;
  /**
   * Open loop at this many requests per second instead of `concurrency` in flight: both sides
   * then see the same arrivals (and batch alike), so their CPU per request compares directly.
   */
  requestRate?: number;
  protocols: Array<'http' | 'grpc'>;
  model?: string;
  /**
   * Seconds of load each server gets, unmeasured, before its measured run: V8 optimises the
   * request path in a background thread that gets little CPU while the load holds both cores,
   * so the first seconds measure partly unoptimised code, and more of it on the side with more
   * code (default 5; 0 for none beyond the measured run's own 1 s).
   */
  serverWarmupSeconds?: number;
}

const here = resolve(import.meta.dirname, '..', '..');

export interface Served {
  http: number;
  grpc: number;
  child: ChildProcess;
}

/** Starts `inferd serve` of `checkout` (built) on free ports; resolves once it is ready. */
export async function startServer(o: { checkout: string; repository: string; config?: string; env?: Record<string, string>; nodeArgs?: string[] }): Promise<Served> {
  const http = await freePort();
  const grpc = await freePort();
  const args = [...serverNodeFlags(o.checkout), ...(o.nodeArgs ?? []), resolve(o.checkout, 'bin', 'inferd.js'), 'serve', '--model-repository', o.repository, '--host', '127.0.0.1', '--port', String(http), '--grpc-port', String(grpc), '--log-level', 'warn'];
  if (o.config) args.push('--config', o.config);
  const child = spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, ...o.env } });
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${http}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null) throw new Error(`inferd serving ${o.repository} exited with ${child.exitCode}`);
    if (Date.now() - started > 120_000) throw new Error(`inferd serving ${o.repository} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { http, grpc, child };
}

const serve = (side: Side): Promise<Served> => startServer({ ...side, repository: resolve(side.checkout, 'examples', 'models') });

function load(protocol: 'http' | 'grpc', url: string, o: AbOptions, headers: Record<string, string> = {}, seconds = o.seconds): Promise<number> {
  return new Promise((res, rej) => {
    const file = join(mkdtempSync(join(tmpdir(), 'inferd-ab-')), 'report.json');
    const windowMs = String(Math.round((seconds * 1000) / 2));
    const args = [resolve(here, 'bin', 'inferd.js'), 'bench', '-m', o.model ?? 'breast_cancer', '-i', protocol, '-u', url, ...(o.requestRate !== undefined ? ['--request-rate-range', String(o.requestRate)] : ['--concurrency-range', String(o.concurrency)]), '--windows', '2', '--window-ms', windowMs, '--warmup-ms', '1000', '--no-progress', '--json', file];
    if (protocol === 'http') for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) return rej(new Error(`inferd bench exited ${code}`));
      const report = JSON.parse(readFileSync(file, 'utf8')) as { steps: Array<{ throughput: number; errorCount: number }> };
      if (report.steps[0]!.errorCount > 0) return rej(new Error(`${report.steps[0]!.errorCount} requests failed`));
      res(report.steps[0]!.throughput);
    });
  });
}

/**
 * CPU time (user + system) a process has used, in microseconds: all its threads, or with
 * `mainThread` only the thread running the event loop. Linux only.
 */
export function processCpuMicros(pid: number, mainThread = false): number | undefined {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

// USER_HZ: 100 on every Linux architecture Node runs on.
const CLOCK_TICKS = 100;

/** Successful inferences the server has counted for `model` (its statistics extension), and the rows and executions (batches) behind them. */
async function servedCount(s: Served, model: string, headers: Record<string, string> = {}): Promise<{ served: number; rows: number; executions: number } | undefined> {
  try {
    const answer = await fetch(`http://127.0.0.1:${s.http}/v2/models/${model}/stats`, { headers });
    if (answer.status !== 200) return undefined;
    const body = (await answer.json()) as { model_stats: Array<{ inference_count: number; execution_count: number; inference_stats: { success: { count: number } } }> };
    return body.model_stats.reduce((n, m) => ({ served: n.served + m.inference_stats.success.count, rows: n.rows + m.inference_count, executions: n.executions + m.execution_count }), { served: 0, rows: 0, executions: 0 });
  } catch {
    return undefined;
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export interface AbSummary {
  protocol: string;
  a: number;
  b: number;
  ratio: number;
  /** Median server CPU (all threads, user + system) per successful request, µs; absent off Linux. */
  cpuUsPerRequestA?: number;
  cpuUsPerRequestB?: number;
  cpuRatio?: number;
  /** The same for the event-loop thread alone (where the request path runs; model execution is in worker threads). */
  mainThreadCpuUsPerRequestA?: number;
  mainThreadCpuUsPerRequestB?: number;
  /** Median rows per model execution (dynamic batching): CPU per request compares only at like batch sizes. */
  meanBatchA?: number;
  meanBatchB?: number;
}

export async function runAB(o: AbOptions): Promise<{ results: Record<'A' | 'B', Record<string, number[]>>; cpuUsPerRequest: Record<'A' | 'B', Record<string, number[]>>; mainThreadCpuUsPerRequest: Record<'A' | 'B', Record<string, number[]>>; batchRows: Record<'A' | 'B', Record<string, number[]>>; summary: AbSummary[] }> {
  const results: Record<'A' | 'B', Record<string, number[]>> = { A: {}, B: {} };
  // The server's own CPU per request: unlike req/s it hardly moves when other work shares the cores.
  const cpu: Record<'A' | 'B', Record<string, number[]>> = { A: {}, B: {} };
  const mainCpu: Record<'A' | 'B', Record<string, number[]>> = { A: {}, B: {} };
  const batches: Record<'A' | 'B', Record<string, number[]>> = { A: {}, B: {} };
  const model = o.model ?? 'breast_cancer';
  for (let round = 0; round < o.rounds; round++) {
    for (const label of round % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
      const side = label === 'A' ? o.a : o.b;
      const s = await serve(side);
      try {
        for (const protocol of o.protocols) {
          const url = protocol === 'http' ? `http://127.0.0.1:${s.http}` : `127.0.0.1:${s.grpc}`;
          const warmup = o.serverWarmupSeconds ?? 5;
          if (warmup > 0) await load(protocol, url, o, side.headers, warmup);
          const servedBefore = await servedCount(s, model, side.headers);
          const cpuBefore = processCpuMicros(s.child.pid!);
          const mainBefore = processCpuMicros(s.child.pid!, true);
          const rps = await load(protocol, url, o, side.headers);
          const cpuAfter = processCpuMicros(s.child.pid!);
          const mainAfter = processCpuMicros(s.child.pid!, true);
          const servedAfter = await servedCount(s, model, side.headers);
          (results[label][protocol] ??= []).push(rps);
          let perRequest = '';
          if (cpuBefore !== undefined && cpuAfter !== undefined && servedBefore !== undefined && servedAfter !== undefined && servedAfter.served > servedBefore.served) {
            const served = servedAfter.served - servedBefore.served;
            const us = (cpuAfter - cpuBefore) / served;
            const mainUs = (mainAfter! - mainBefore!) / served;
            // The cost per request follows the batch size (one worker dispatch per batch), which a round's load decides.
            const batch = (servedAfter.rows - servedBefore.rows) / Math.max(1, servedAfter.executions - servedBefore.executions);
            (cpu[label][protocol] ??= []).push(us);
            (mainCpu[label][protocol] ??= []).push(mainUs);
            (batches[label][protocol] ??= []).push(batch);
            perRequest = `, server CPU per request ${us.toFixed(1)} µs (event loop ${mainUs.toFixed(1)}), mean batch ${batch.toFixed(1)} rows`;
          }
          console.error(`round ${round + 1} ${label} ${protocol}: ${Math.round(rps)} req/s${perRequest}`);
        }
      } finally {
        s.child.kill('SIGTERM');
        await new Promise((r) => s.child.once('exit', r));
      }
    }
  }
  const summary = o.protocols.map((p) => {
    const a = median(results.A[p]!);
    const b = median(results.B[p]!);
    const line: AbSummary = { protocol: p, a: Math.round(a), b: Math.round(b), ratio: Math.round((b / a) * 1000) / 1000 };
    if (cpu.A[p] !== undefined && cpu.B[p] !== undefined) {
      const ca = median(cpu.A[p]);
      const cb = median(cpu.B[p]);
      line.cpuUsPerRequestA = Math.round(ca * 10) / 10;
      line.cpuUsPerRequestB = Math.round(cb * 10) / 10;
      line.cpuRatio = Math.round((cb / ca) * 1000) / 1000;
      line.mainThreadCpuUsPerRequestA = Math.round(median(mainCpu.A[p]!) * 10) / 10;
      line.mainThreadCpuUsPerRequestB = Math.round(median(mainCpu.B[p]!) * 10) / 10;
      line.meanBatchA = Math.round(median(batches.A[p]!) * 10) / 10;
      line.meanBatchB = Math.round(median(batches.B[p]!) * 10) / 10;
    }
    return line;
  });
  return { results, cpuUsPerRequest: cpu, mainThreadCpuUsPerRequest: mainCpu, batchRows: batches, summary };
}
