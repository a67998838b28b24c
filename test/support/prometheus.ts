/**
 * Starts a real Prometheus server for tests: its own free port, a temporary config and TSDB,
 * fast scrape and rule evaluation. The `prometheus` binary must be on PATH (or named by
 * PROMETHEUS_BIN); a missing binary is an error, never a skipped test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './ports.js';

export interface PrometheusOptions {
  /** `host:port` or a URL such as `http://127.0.0.1:8080/metrics`; all scraped as one job. */
  scrapeTargets: string[];
  rulesFile?: string;
  /** Default 1 s. */
  scrapeIntervalSeconds?: number;
  /** Rule evaluation interval; default 1 s. */
  evaluationIntervalSeconds?: number;
  /** Default "inferd", the job the availability SLO reads. */
  jobName?: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export interface RuleStatus {
  name: string;
  health: string;
  type: 'recording' | 'alerting';
  lastError?: string;
  state?: string;
}

export interface PrometheusServer {
  url: string;
  /** An instant query; a scalar result comes back as one sample without labels. */
  query(promql: string): Promise<PromSample[]>;
  /** Re-runs a query until `accept` holds, or fails after timeoutMs with the last result. */
  waitFor(promql: string, accept: (samples: PromSample[]) => boolean, timeoutMs?: number): Promise<PromSample[]>;
  /** Every loaded rule with its health (ok, err, unknown). */
  rules(): Promise<RuleStatus[]>;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
  errorType?: string;
}

type QueryData = { resultType: 'vector'; result: Array<{ metric: Record<string, string>; value: [number, string] }> } | { resultType: 'scalar'; result: [number, string] } | { resultType: 'matrix' | 'string'; result: unknown };

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusServer> {
  const binary = process.env['PROMETHEUS_BIN'] ?? 'prometheus';
  const interval = options.scrapeIntervalSeconds ?? 1;
  const evaluation = options.evaluationIntervalSeconds ?? 1;
  const dir = await mkdtemp(join(tmpdir(), 'inferd-prometheus-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;

  const targets = options.scrapeTargets.map(parseTarget);
  const paths = new Set(targets.map((t) => t.path));
  const schemes = new Set(targets.map((t) => t.scheme));
  if (paths.size > 1 || schemes.size > 1) throw new Error('all scrape targets must share one scheme and metrics path');
  const config = {
    global: { scrape_interval: `${interval}s`, scrape_timeout: `${interval}s`, evaluation_interval: `${evaluation}s` },
    ...(options.rulesFile === undefined ? {} : { rule_files: [resolve(options.rulesFile)] }),
    scrape_configs: [
      {
        job_name: options.jobName ?? 'inferd',
        scheme: targets[0]?.scheme ?? 'http',
        metrics_path: targets[0]?.path ?? '/metrics',
        static_configs: [{ targets: targets.map((t) => t.hostPort) }],
      },
    ],
  };
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, stringify(config));

  const child = spawn(binary, [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const exited = new Promise<string>((resolveExit) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      resolveExit(error.code === 'ENOENT' ? `the ${binary} binary is not installed (apt-get install prometheus, or set PROMETHEUS_BIN)` : error.message);
    });
    child.once('exit', (code, signal) => resolveExit(`prometheus exited (code ${code}, signal ${signal}): ${stderr}`));
  });

  const cleanup = async (): Promise<void> => {
    await stopProcess(child);
    await rm(dir, { recursive: true, force: true });
  };

  let failure: string | undefined;
  void exited.then((reason) => {
    failure = reason;
  });
  const problem = await waitReady(url, 30_000, () => failure);
  if (problem !== undefined) {
    await cleanup();
    throw new Error(problem);
  }

  const query = async (promql: string): Promise<PromSample[]> => {
    const data = await api<QueryData>(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    if (data.resultType === 'vector') return data.result.map((s) => ({ metric: s.metric, value: parseValue(s.value[1]) }));
    if (data.resultType === 'scalar') return [{ metric: {}, value: parseValue(data.result[1]) }];
    throw new Error(`query ${promql} returned a ${data.resultType}, not an instant vector or scalar`);
  };

  return {
    url,
    query,
    async waitFor(promql, accept, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PromSample[] = [];
      for (;;) {
        last = await query(promql);
        if (accept(last)) return last;
        if (Date.now() > deadline) throw new Error(`timed out waiting on ${promql}; last result: ${JSON.stringify(last)}`);
        await sleep(250);
      }
    },
    async rules() {
      const data = await api<{ groups: Array<{ rules: RuleStatus[] }> }>(`${url}/api/v1/rules`);
      return data.groups.flatMap((g) => g.rules);
    },
    stop: cleanup,
  };
}

function parseTarget(target: string): { scheme: string; hostPort: string; path: string } {
  if (!/^[a-z]+:\/\//.test(target)) return { scheme: 'http', hostPort: target, path: '/metrics' };
  const parsed = new URL(target);
  return { scheme: parsed.protocol.replace(':', ''), hostPort: parsed.host, path: parsed.pathname === '/' ? '/metrics' : parsed.pathname };
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

async function api<T>(address: string): Promise<T> {
  const response = await fetch(address);
  const body = (await response.json()) as ApiResponse<T>;
  if (body.status !== 'success') throw new Error(`Prometheus API ${address}: ${body.errorType ?? ''} ${body.error ?? response.status}`);
  return body.data;
}

/** Undefined once ready; otherwise why not (the process died, or the time ran out). */
async function waitReady(url: string, timeoutMs: number, failed: () => string | undefined): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const reason = failed();
    if (reason !== undefined) return reason;
    try {
      const response = await fetch(`${url}/-/ready`);
      await response.body?.cancel();
      if (response.ok) return undefined;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return `Prometheus at ${url} was not ready within ${timeoutMs} ms: ${failed() ?? ''}`;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exit = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exit;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
