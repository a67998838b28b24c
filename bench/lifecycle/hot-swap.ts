/**
 * Hot swap under load: `inferd serve` serves breast_cancer from a SQLite registry alias
 * (`breast_cancer@champion`, poll mode), 32 closed loops drive it, and the alias moves from
 * version 1 to version 2 mid-run. Reported per run and as medians:
 * - failed requests over the whole run (target 0);
 * - p99 latency of requests started in the 5 s before the move, and of those started from the
 *   move until 1 s after the new version first answered (the new version loading and warming
 *   up beside the old one, the switch, the old one draining); target: during ≤ 2x before;
 * - time from the alias move to `GET /v2/models/breast_cancer` listing version 2.
 *
 *   npm run build && npx tsx bench/lifecycle/hot-swap.ts [--runs 3] [--concurrency 32] [--move api|registry] [--warmup batches|example]
 *
 * `--move api` moves the alias with `PUT /v2/admin/registry/models/breast_cancer/aliases/champion`
 * on the server (which polls at once); `--move registry` moves it in the registry database
 * directly, as another host's `inferd models alias` would, and the server's poll
 * (`poll_interval_ms`, 1000 here) notices it.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { openRegistry } from '../../src/registry/open.js';
import { closedLoop, EXAMPLES, flag, median, percentile, round, SHARED, sleep, startServer, type Sample } from './common.js';

const RUNS = Number(flag('runs', '3'));
const CONCURRENCY = Number(flag('concurrency', '32'));
const MOVE = flag('move', 'api') as 'api' | 'registry';
const WARMUP = flag('warmup', 'batches') as 'batches' | 'example';
const POLL_MS = 1000;
const BC = join(SHARED, 'breast_cancer', '1', 'model.onnx');

const golden = JSON.parse(await readFile(join(SHARED, 'breast_cancer', 'golden.json'), 'utf8')) as { inputs: { features: { data: number[] } } };
const BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: golden.inputs.features.data.slice(0, 30) }] });

interface RunResult {
  requests: number;
  failed: number;
  p99BeforeMs: number;
  p99DuringMs: number;
  ratio: number;
  swapMs: number;
  /** p99 while the new version loads and warms up beside the old one. */
  p99LoadingMs: number;
  /** p99 in the first second on the new version (the old one draining and unloading). */
  p99AfterSwitchMs: number;
  servedByOld: number;
  servedByNew: number;
}

async function once(): Promise<RunResult> {
  const home = await mkdtemp(join(tmpdir(), 'inferd-hotswap-'));
  const url = `sqlite:${join(home, 'registry.db')}`;
  const registry = await openRegistry(url, { home, actor: 'bench' });
  await registry.register('breast_cancer', BC);
  // A retrained model: same graph and signature, other bytes (a doc_string appended).
  const bytes = await readFile(BC);
  const note = Buffer.from('retrained', 'utf8');
  await writeFile(join(home, 'v2.onnx'), Buffer.concat([bytes, Buffer.from([0x32, note.length]), note]));
  await registry.register('breast_cancer', join(home, 'v2.onnx'));
  await registry.setAlias('breast_cancer', 'champion', 1);

  // Serving config: the example's config.yaml, with a warm-up at the batch sizes the dynamic
  // batcher forms under this load, so the new version's first batches of each size do not pay
  // for onnxruntime's first-run allocations after the switch (--warmup example: the example's own).
  const config = YAML.parse(await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'), 'utf8')) as Record<string, unknown>;
  if (WARMUP === 'batches') config['warmup'] = [1, 8, 16, 32, 64].map((batch_size) => ({ batch_size, count: 25, inputs: { features: 'random' } }));
  const empty = await mkdtemp(join(tmpdir(), 'inferd-hotswap-repo-'));
  const server = await startServer({
    model_repository: empty,
    registry: url,
    registry_options: { home },
    models: [{ registry: 'breast_cancer@champion', config }],
    model_control: { mode: 'poll', poll_interval_ms: POLL_MS },
  });
  try {
    const load = closedLoop(`${server.url}/v2/models/breast_cancer/infer`, BODY, CONCURRENCY);
    await sleep(2000); // warm: connections open, JIT settled
    const beforeFrom = performance.now();
    await sleep(5000);
    const moved = performance.now();
    if (MOVE === 'api') {
      const r = await fetch(`${server.url}/v2/admin/registry/models/breast_cancer/aliases/champion`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ version: 2, expected: 1 }),
      });
      if (r.status !== 200) throw new Error(`alias move failed: ${r.status} ${await r.text()}`);
    } else {
      await registry.setAlias('breast_cancer', 'champion', 2, { expected: 1 });
    }
    let serving = 0;
    for (;;) {
      const r = await fetch(`${server.url}/v2/models/breast_cancer`);
      const meta = (await r.json()) as { versions?: string[] };
      if (meta.versions?.length === 1 && meta.versions[0] === '2') {
        serving = performance.now();
        break;
      }
      if (performance.now() - moved > 60_000) throw new Error('version 2 never served');
      await sleep(5);
    }
    await sleep(3000);
    const samples = await load.stop();
    const latency = (xs: Sample[]) => xs.filter((s) => s.status === 200).map((s) => s.end - s.start);
    const before = latency(samples.filter((s) => s.start >= beforeFrom && s.start < moved));
    const during = latency(samples.filter((s) => s.start >= moved && s.start < serving + 1000));
    const loading = latency(samples.filter((s) => s.start >= moved && s.start < serving));
    const switched = latency(samples.filter((s) => s.start >= serving && s.start < serving + 1000));
    const p99Before = percentile(before, 99);
    const p99During = percentile(during, 99);
    return {
      requests: samples.length,
      failed: samples.filter((s) => s.status !== 200).length,
      p99BeforeMs: round(p99Before, 2),
      p99DuringMs: round(p99During, 2),
      ratio: round(p99During / p99Before, 2),
      swapMs: round(serving - moved, 0),
      p99LoadingMs: round(percentile(loading, 99), 2),
      p99AfterSwitchMs: round(percentile(switched, 99), 2),
      servedByOld: samples.filter((s) => s.version === '1').length,
      servedByNew: samples.filter((s) => s.version === '2').length,
    };
  } finally {
    await server.stop();
    await registry.close();
  }
}

const runs: RunResult[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once();
  runs.push(r);
  console.log(`run ${i + 1}: ${JSON.stringify(r)}`);
}
const m = (key: keyof RunResult) => median(runs.map((r) => r[key]));
console.log(`\nhot swap, ${CONCURRENCY} closed loops, alias moved by ${MOVE === 'api' ? 'the admin API' : `the registry (server polls every ${POLL_MS} ms)`}, warm-up ${WARMUP}, medians of ${RUNS} runs:`);
console.log('| failed requests | p99 before (ms) | p99 during swap (ms) | during / before | p99 loading / after switch (ms) | alias move → new version serving (ms) | requests per run |');
console.log('|---|---|---|---|---|---|---|');
console.log(
  `| ${m('failed')} (max ${Math.max(...runs.map((r) => r.failed))}) | ${m('p99BeforeMs')} | ${m('p99DuringMs')} | ${m('ratio')} | ${m('p99LoadingMs')} / ${m('p99AfterSwitchMs')} | ${m('swapMs')} | ${m('requests')} |`,
);
