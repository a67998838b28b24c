/**
 * Latency of the sentence-embedding ensemble (text_tokenizer → text_encoder_tiny in one request,
 * tensors kept in process) against a client making the two round trips itself, one request at a
 * time, alternating, in one run.
 *
 *   npm run build && npx tsx bench/ensembles/latency.ts [--requests 200]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EXAMPLES, percentile, repository, serve } from '../cache/serve.js';

const { values } = parseArgs({ options: { requests: { type: 'string', default: '200' } } });
const N = Number(values.requests);

const repo = await repository({
  text_tokenizer: { copyFrom: join(EXAMPLES, 'text_tokenizer') },
  text_encoder_tiny: { copyFrom: join(EXAMPLES, 'text_encoder_tiny') },
  sentence_embedding: {
    config: `runtime: ensemble
max_batch_size: 0
inputs: [{ name: text, datatype: BYTES, shape: [-1] }]
outputs: [{ name: embedding, datatype: FP32, shape: [-1, 128] }]
ensemble:
  steps:
    - { model: text_tokenizer, inputs: { text: text }, outputs: { input_ids: ids, attention_mask: mask } }
    - { model: text_encoder_tiny, inputs: { input_ids: ids, attention_mask: mask }, outputs: { embedding: embedding } }
`,
  },
});
const { url, child } = await serve(repo);

const post = async (model: string, body: unknown): Promise<{ outputs: unknown[] }> => {
  const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${model}: ${r.status} ${await r.text()}`);
  return (await r.json()) as { outputs: unknown[] };
};

try {
  const sentences = (i: number) => ({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [2], data: [`request number ${i} asks for an embedding`, 'a second sentence in the same request'] }] });
  const ensemble: number[] = [];
  const manual: number[] = [];
  for (let i = 0; i < 20; i++) await post('sentence_embedding', sentences(i));
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    await post('sentence_embedding', sentences(i));
    ensemble.push(performance.now() - t);
    t = performance.now();
    const tokens = await post('text_tokenizer', sentences(i));
    await post('text_encoder_tiny', { inputs: tokens.outputs });
    manual.push(performance.now() - t);
  }
  ensemble.sort((a, b) => a - b);
  manual.sort((a, b) => a - b);
  const row = (name: string, xs: number[]) => console.log(`${name}: p50 ${percentile(xs, 50).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms`);
  console.log(`${N} requests of 2 sentences each, one at a time, alternating`);
  row('ensemble (one request)     ', ensemble);
  row('client (two round trips)   ', manual);
  console.log(`p50 ratio ensemble / client: ${(percentile(ensemble, 50) / percentile(manual, 50)).toFixed(2)}`);
} finally {
  child.kill('SIGTERM');
}
