/**
 * Throughput of two builds of inferd side by side: breast_cancer at concurrency 64 over REST
 * (JSON) and gRPC, rounds alternating A, B, A, B... so that both meet the same machine load.
 * Reports the median of each and the ratio B / A, measured in one run.
 *
 *   npx tsx bench/pipeline/compare.ts --a ../old-checkout --b . [--rounds 5] [--seconds 5]
 *
 * Each checkout must be built (`npm run build`); its `bin/inferd.js` serves examples/models.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '64' },
  },
});
if (!values.a) throw new Error('--a <checkout> is required');
const checkouts = { A: resolve(values.a), B: resolve(values.b!) };
const ROUNDS = Number(values.rounds);
const WINDOW_MS = Math.round((Number(values.seconds) * 1000) / 2);
const CONCURRENCY = values.concurrency!;
const here = resolve(import.meta.dirname, '..', '..');

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function serve(checkout: string): Promise<{ http: number; grpc: number; child: ChildProcess }> {
  const http = await freePort();
  const grpc = await freePort();
  const child = spawn(
    process.execPath,
    [resolve(checkout, 'bin', 'inferd.js'), 'serve', '--model-repository', resolve(checkout, 'examples', 'models'), '--host', '127.0.0.1', '--port', String(http), '--grpc-port', String(grpc), '--log-level', 'warn'],
    { stdio: 'ignore' },
  );
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${http}/health/ready`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - started > 120_000) throw new Error(`${checkout} did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { http, grpc, child };
}

/** One measurement with the project's own load generator; returns requests per second. */
function load(protocol: 'http' | 'grpc', url: string): Promise<number> {
  return new Promise((res, rej) => {
    const file = join(mkdtempSync(join(tmpdir(), 'inferd-compare-')), 'report.json');
    const args = [resolve(here, 'bin', 'inferd.js'), 'bench', '-m', 'breast_cancer', '-i', protocol, '-u', url, '--concurrency-range', CONCURRENCY, '--windows', '2', '--window-ms', String(WINDOW_MS), '--warmup-ms', '1000', '--no-progress', '--json', file];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => {
      if (code !== 0) return rej(new Error(`inferd bench exited ${code}`));
      const report = JSON.parse(readFileSync(file, 'utf8')) as { steps: Array<{ throughput: number }> };
      res(report.steps[0]!.throughput);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results: Record<string, Record<'http' | 'grpc', number[]>> = { A: { http: [], grpc: [] }, B: { http: [], grpc: [] } };
for (let round = 0; round < ROUNDS; round++) {
  for (const label of round % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
    const s = await serve(checkouts[label]);
    try {
      for (const protocol of ['http', 'grpc'] as const) {
        const url = protocol === 'http' ? `http://127.0.0.1:${s.http}` : `127.0.0.1:${s.grpc}`;
        const rps = await load(protocol, url);
        results[label]![protocol].push(rps);
        console.error(`round ${round + 1} ${label} ${protocol}: ${Math.round(rps)} req/s`);
      }
    } finally {
      s.child.kill('SIGTERM');
      await new Promise((r) => s.child.once('exit', r));
    }
  }
}
const summary = (['http', 'grpc'] as const).map((p) => {
  const a = median(results.A![p]);
  const b = median(results.B![p]);
  return { protocol: p, a: Math.round(a), b: Math.round(b), ratio: Math.round((b / a) * 1000) / 1000 };
});
console.log(JSON.stringify({ checkouts, rounds: ROUNDS, concurrency: Number(CONCURRENCY), results, summary }, null, 2));
