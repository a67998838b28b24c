/**
 * Throughput with the prediction cache at a 90% hit ratio against the same model with the cache
 * off, in one run: one server serves text_encoder_tiny twice (`cached` with `cache:`, `plain`
 * without); rounds alternate between them at the same concurrency. 90% of requests draw from a
 * small hot set, 10% are sentences never seen. The hit ratio is read from the server's metrics.
 *
 *   npm run build && npx tsx bench/cache/hit-ratio.ts [--seconds 3] [--rounds 2] [--concurrency 16]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXAMPLES, repository, serve } from './serve.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '2' }, concurrency: { type: 'string', default: '16' } } });
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONCURRENCY = Number(values.concurrency);
const HOT = 20;

const repo = await repository({
  cached: { copyFrom: join(EXAMPLES, 'text_encoder_tiny'), config: '\ncache: { ttl_seconds: 600 }\n' },
  plain: { copyFrom: join(EXAMPLES, 'text_encoder_tiny') },
});
const { url, child } = await serve(repo);

let unique = 1_000_000;
function body(): string {
  // 90% from the hot set, 10% new: ids of one sequence of 32 tokens.
  const seed = Math.random() < 0.9 ? Math.floor(Math.random() * HOT) : unique++;
  const ids = Array.from({ length: 32 }, (_, i) => 1 + ((seed * 131 + i * 17) % 4000));
  return JSON.stringify({
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [1, 32], data: ids },
      { name: 'attention_mask', datatype: 'INT64', shape: [1, 32], data: ids.map(() => 1) },
    ],
  });
}

async function round(model: string, seconds = SECONDS): Promise<number> {
  const until = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < until) {
        const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(`${model} answered ${r.status}`);
        done++;
      }
    }),
  );
  return done / seconds;
}

try {
  // Warm both paths (JIT, connections) and the hot set, so measured rounds see the steady state.
  await round('plain', 2);
  await round('cached', 2);
  const metricsBefore = await fetch(`${url}/metrics`).then((r) => r.text());
  const results: Record<string, number[]> = { plain: [], cached: [] };
  for (let i = 0; i < ROUNDS; i++) for (const m of ['plain', 'cached']) results[m]!.push(await round(m));
  const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
  const count = (text: string, re: RegExp) => [...text.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  const hits = count(metrics, /inferd_cache_hits_total\{model="cached",tier="\w+"\} (\d+)/g) - count(metricsBefore, /inferd_cache_hits_total\{model="cached",tier="\w+"\} (\d+)/g);
  const misses = count(metrics, /inferd_cache_misses_total\{model="cached"\} (\d+)/g) - count(metricsBefore, /inferd_cache_misses_total\{model="cached"\} (\d+)/g);
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const plain = median(results.plain!);
  const cached = median(results.cached!);
  console.log(`concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${SECONDS} s each, alternating`);
  console.log(`cache off : ${plain.toFixed(0)} req/s  (rounds: ${results.plain!.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`cache on  : ${cached.toFixed(0)} req/s  (rounds: ${results.cached!.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`hit ratio : ${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)}%  (${hits} hits, ${misses} misses)`);
  console.log(`ratio on/off: ${(cached / plain).toFixed(2)}x`);
} finally {
  child.kill('SIGTERM');
}
