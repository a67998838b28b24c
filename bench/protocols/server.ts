/**
 * The server under test: a temporary model repository, `node bin/inferd.js serve` as a child
 * process, readiness, CPU accounting from /proc, the statistics extension, and shutdown.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { freePort } from '../../test/support/ports.js';
export { freePort };
import { join, resolve } from 'node:path';
import { serverNodeFlags } from '../support/node-flags.js';

export interface ModelEntry {
  name: string;
  /** The .onnx file; linked into the repository, not copied. */
  onnx: string;
  config: string;
}

/** Writes `<dir>/<model>/config.yaml` and `<dir>/<model>/1/model.onnx` (a symlink) for each model. */
export function makeRepository(parent: string, models: ModelEntry[]): string {
  const dir = mkdtempSync(join(parent, 'inferd-protocols-repo-'));
  for (const m of models) {
    if (!existsSync(m.onnx)) throw new Error(`model file not found: ${m.onnx}`);
    mkdirSync(join(dir, m.name, '1'), { recursive: true });
    writeFileSync(join(dir, m.name, 'config.yaml'), m.config);
    symlinkSync(resolve(m.onnx), join(dir, m.name, '1', 'model.onnx'));
  }
  return dir;
}

export function httpGet(port: number, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((res, rej) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs, agent: false }, (r) => {
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (body += c));
      r.on('end', () => res({ status: r.statusCode ?? 0, body }));
      r.on('error', rej);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', rej);
  });
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a /proc stat file, in ms (0 if it cannot be read). */
function cpuMsOf(statFile: string): number {
  try {
    const text = readFileSync(statFile, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

export interface CpuSample {
  /** Every thread of the server process. */
  totalMs: number;
  /** The main thread alone: HTTP, gRPC, request decoding and response encoding happen here. */
  mainMs: number;
}

export interface RunningServer {
  readonly pid: number;
  readonly httpPort: number;
  readonly grpcPort: number;
  cpu(): CpuSample;
  /** SIGTERM, then waits for the process to exit (it drains first). */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  root: string;
  repository: string;
  /** Node flags placed before bin/inferd.js (for example --cpu-prof). */
  nodeArgs?: string[];
  logFile: string;
  readyModels: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}

export async function startServer(options: StartOptions): Promise<RunningServer> {
  const httpPort = await freePort();
  const grpcPort = await freePort();
  const log = openSync(options.logFile, 'a');
  const child: ChildProcess = spawn(
    process.execPath,
    [
      ...serverNodeFlags('.'),
      ...(options.nodeArgs ?? []),
      'bin/inferd.js',
      'serve',
      '--model-repository',
      options.repository,
      '--host',
      '127.0.0.1',
      '--port',
      String(httpPort),
      '--grpc-port',
      String(grpcPort),
    ],
    { cwd: options.root, env: { ...process.env, ...options.env }, stdio: ['ignore', log, log] },
  );
  closeSync(log);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((res) =>
    child.once('exit', (code) => {
      exitCode = code;
      res(code);
    }),
  );
  const pid = child.pid!;
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`the server exited with code ${exitCode} before it was ready; see ${options.logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server was not ready in time; see ${options.logFile}`);
    }
    try {
      let ready = (await httpGet(httpPort, '/v2/health/ready', 1000)).status === 200;
      for (const m of options.readyModels) ready &&= (await httpGet(httpPort, `/v2/models/${m}/ready`, 1000)).status === 200;
      if (ready) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    pid,
    httpPort,
    grpcPort,
    cpu: () => ({ totalMs: cpuMsOf(`/proc/${pid}/stat`), mainMs: cpuMsOf(`/proc/${pid}/task/${pid}/stat`) }),
    async stop() {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Per-batch-size execution counts and model compute time, from the statistics extension. */
export interface BatchCounters {
  inferences: number;
  executions: number;
  /** batch size → { executions, compute_infer ns } */
  batches: Record<number, { count: number; inferNs: number }>;
  queueNs: number;
  /** Requests answered and their total time inside the data plane (queue + batch + model + copies). */
  success: { count: number; ns: number };
}

export async function batchCounters(port: number, model: string): Promise<BatchCounters> {
  const { status, body } = await httpGet(port, `/v2/models/${model}/stats`);
  if (status !== 200) throw new Error(`statistics for ${model}: HTTP ${status} ${body.slice(0, 200)}`);
  const stats = (
    JSON.parse(body) as {
      model_stats: Array<{
        inference_count: number;
        execution_count: number;
        inference_stats: { queue: { ns: number }; success: { count: number; ns: number } };
        batch_stats: Array<{ batch_size: number; compute_infer: { count: number; ns: number } }>;
      }>;
    }
  ).model_stats[0]!;
  const batches: BatchCounters['batches'] = {};
  for (const b of stats.batch_stats) batches[b.batch_size] = { count: b.compute_infer.count, inferNs: b.compute_infer.ns };
  return {
    inferences: stats.inference_count,
    executions: stats.execution_count,
    batches,
    queueNs: stats.inference_stats.queue.ns,
    success: { count: stats.inference_stats.success.count, ns: stats.inference_stats.success.ns },
  };
}

export function counterDelta(before: BatchCounters, after: BatchCounters): BatchCounters {
  const batches: BatchCounters['batches'] = {};
  for (const [size, b] of Object.entries(after.batches)) {
    const a = before.batches[Number(size)] ?? { count: 0, inferNs: 0 };
    const count = b.count - a.count;
    if (count > 0) batches[Number(size)] = { count, inferNs: b.inferNs - a.inferNs };
  }
  return {
    inferences: after.inferences - before.inferences,
    executions: after.executions - before.executions,
    batches,
    queueNs: after.queueNs - before.queueNs,
    success: { count: after.success.count - before.success.count, ns: after.success.ns - before.success.ns },
  };
}

/** The .cpuprofile files a `--cpu-prof-dir` holds. */
export function cpuProfiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)) : [];
}
