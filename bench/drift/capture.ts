/**
 * Cost of drift capture: breast_cancer throughput at concurrency 64 with capture on (a `drift:`
 * section: every request's row goes to a 10,000-row window, judged in the drift worker) and off
 * (the same config without it), both servers up for the whole run, rounds alternating off, on,
 * on, off... so that both meet the same machine load. Reports the median of each and the ratio
 * on / off, measured in one run. The load generator is `inferd bench`, fed the test split.
 *
 * Throughput on a shared machine swings by tens of percent between rounds, so the script also
 * reports each server's CPU time per request (all its threads, from /proc, over the requests its
 * own counter saw): a steadier figure of what capture adds.
 *
 *   npm run build && npx tsx bench/drift/capture.ts [--rounds 6] [--seconds 4] [--protocol http|grpc] [--window-rows 10000]
 *
 * --window-rows sets drift.window.max_rows (the window keeps a 10,000-row reservoir): 10,000 at
 * ~12,000 req/s judges a window (KS against the 426-row reference) more than once a second, the
 * worst case; a larger one measures the capture path with fewer judgements.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync as readText, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median, startServer } from '../support/ab.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '64' },
    protocol: { type: 'string', default: 'http' },
    'window-rows': { type: 'string', default: '10000' },
    /** Calibration: the 'on' server without a drift section too (an A/A run shows the noise). */
    'a-a': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const WINDOW_MS = Math.round((Number(values.seconds) * 1000) / 2);
const PROTOCOL = values.protocol === 'grpc' ? 'grpc' : 'http';
const here = resolve(import.meta.dirname, '..', '..');
const data = resolve(here, '..', 'shared', 'models', 'breast_cancer', 'data');

type Mode = 'off' | 'on';

/** A repository holding the example breast_cancer, with or without a drift section. */
function repository(mode: Mode): string {
  const root = mkdtempSync(join(tmpdir(), `inferd-capture-${mode}-`));
  cpSync(join(here, 'examples', 'models', 'breast_cancer'), join(root, 'breast_cancer'), { recursive: true });
  if (mode === 'on' && !values['a-a']) {
    const config = join(root, 'breast_cancer', 'config.yaml');
    writeFileSync(config, `${readFileSync(config, 'utf8')}drift:\n  reference: ${join(data, 'train.csv')}\n  exclude: [label]\n  window: { max_rows: ${Number(values['window-rows'])}, capacity: 10000 }\n`);
  }
  return root;
}

/** CPU time of a process (user + system, every thread) in ms, from /proc. */
function cpuMs(pid: number): number {
  const fields = readText(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Inferences the server has answered, from its own counter. */
async function served(http: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
  let total = 0;
  for (const m of text.matchAll(/^inferd_inference_requests_total\{[^}]*\} (\S+)$/gm)) total += Number(m[1]);
  return total;
}

/** One measurement with the project's own load generator; returns requests per second. */
function load(url: string): Promise<number> {
  return new Promise((res, rej) => {
    const file = join(mkdtempSync(join(tmpdir(), 'inferd-capture-')), 'report.json');
    const args = [
      resolve(here, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', PROTOCOL, '-u', url,
      '--concurrency-range', values.concurrency!, '--windows', '2', '--window-ms', String(WINDOW_MS), '--warmup-ms', '1000',
      '--input-data', join(data, 'test.csv'), '--exclude', 'label', '--no-progress', '--json', file,
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) return rej(new Error(`inferd bench exited ${code}`));
      const report = JSON.parse(readFileSync(file, 'utf8')) as { steps: Array<{ throughput: number }> };
      res(report.steps[0]!.throughput);
    });
  });
}

/** Rows the drift server captured and windows it judged, from its drift endpoint. */
async function captured(http: number): Promise<{ rows: number; windows: number; dropped: number }> {
  const body = (await (await fetch(`http://127.0.0.1:${http}/v2/admin/models/breast_cancer/drift`)).json()) as {
    versions: Array<{ capture?: { rows: number; dropped_requests: number }; windows_judged?: number }>;
  };
  const v = body.versions[0]!;
  return { rows: v.capture?.rows ?? 0, windows: v.windows_judged ?? 0, dropped: v.capture?.dropped_requests ?? 0 };
}

const repos = { off: repository('off'), on: repository('on') };
const serve = (repository: string) => startServer({ checkout: here, repository });
const servers = { off: await serve(repos.off), on: await serve(repos.on) };
const results: Record<Mode, number[]> = { off: [], on: [] };
const cpuPerRequest: Record<Mode, number[]> = { off: [], on: [] };
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const s = servers[mode];
      const cpu0 = cpuMs(s.child.pid!);
      const req0 = await served(s.http);
      const rps = await load(PROTOCOL === 'http' ? `http://127.0.0.1:${s.http}` : `127.0.0.1:${s.grpc}`);
      const us = ((cpuMs(s.child.pid!) - cpu0) * 1000) / ((await served(s.http)) - req0);
      results[mode].push(rps);
      cpuPerRequest[mode].push(us);
      console.error(`round ${round + 1} capture ${mode}: ${Math.round(rps)} req/s, ${us.toFixed(1)} µs CPU per request`);
    }
  }
  const drift = values['a-a'] ? null : await captured(servers.on.http);
  const off = median(results.off);
  const on = median(results.on);
  console.log(
    JSON.stringify(
      { calibration: values['a-a'], protocol: PROTOCOL, windowRows: Number(values['window-rows']), concurrency: Number(values.concurrency), rounds: ROUNDS, results, median: { off: Math.round(off), on: Math.round(on) }, ratio: Math.round((on / off) * 1000) / 1000,
        cpuPerRequestUs: { off: Math.round(median(cpuPerRequest.off) * 10) / 10, on: Math.round(median(cpuPerRequest.on) * 10) / 10 },
        cpuRatio: Math.round((median(cpuPerRequest.on) / median(cpuPerRequest.off)) * 1000) / 1000,
        drift },
      null,
      2,
    ),
  );
} finally {
  for (const s of Object.values(servers)) s.child.kill('SIGTERM');
  await Promise.all(Object.values(servers).map((s) => new Promise((r) => (s.child.exitCode !== null ? r(null) : s.child.once('exit', r)))));
  for (const r of Object.values(repos)) rmSync(r, { recursive: true, force: true });
}
