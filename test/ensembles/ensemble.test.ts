/**
 * An ensemble: text_tokenizer → text_encoder_tiny as one model. One request with sentences
 * returns embeddings equal to running the two models by hand; each step is counted by its own
 * model; a config whose steps read a tensor nobody produces is refused at load.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { checkEnsemble } from '../../src/ensembles/plan.js';
import { parseModelConfig } from '../../src/models/config.js';
import type { InferdServer } from '../../src/server/index.js';
import { REPO_ROOT } from '../support/paths.js';
import { makeRepository, postJson, startInProcess } from '../support/server.js';

const ENSEMBLE_CONFIG = `runtime: ensemble
max_batch_size: 0
inputs: [{ name: text, datatype: BYTES, shape: [-1] }]
outputs: [{ name: embedding, datatype: FP32, shape: [-1, 128] }]
ensemble:
  steps:
    - { model: text_tokenizer, inputs: { text: text }, outputs: { input_ids: ids, attention_mask: mask } }
    - { model: text_encoder_tiny, inputs: { input_ids: ids, attention_mask: mask }, outputs: { embedding: embedding } }
`;

const SENTENCES = ['The cat sat on the mat.', 'A model server answers requests in batches', 'hello'];

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    text_tokenizer: { copyFrom: join(REPO_ROOT, 'examples', 'models', 'text_tokenizer') },
    text_encoder_tiny: { copyFrom: join(REPO_ROOT, 'examples', 'models', 'text_encoder_tiny') },
    sentence_embedding: { config: ENSEMBLE_CONFIG },
  });
  ({ server, url } = await startInProcess(repo));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(2000);
});

describe('ensembles', () => {
  it('sentences → embeddings equal the two models run by hand', async () => {
    const text = { name: 'text', datatype: 'BYTES', shape: [SENTENCES.length], data: SENTENCES };
    const one = await postJson(`${url}/v2/models/sentence_embedding/infer`, { id: 'e1', inputs: [text] });
    expect(one.status).toBe(200);
    expect(one.body.id).toBe('e1');
    expect(one.body.model_name).toBe('sentence_embedding');
    const out = one.body.outputs[0];
    expect(out.name).toBe('embedding');
    expect(out.shape).toEqual([3, 128]);

    const tokens = await postJson(`${url}/v2/models/text_tokenizer/infer`, { inputs: [text] });
    expect(tokens.status).toBe(200);
    const encoded = await postJson(`${url}/v2/models/text_encoder_tiny/infer`, { inputs: tokens.body.outputs });
    expect(encoded.status).toBe(200);
    const byHand = encoded.body.outputs.find((o: { name: string }) => o.name === 'embedding');
    expect(byHand.shape).toEqual(out.shape);
    (out.data as number[]).forEach((v, i) => expect(Math.abs(v - byHand.data[i])).toBeLessThanOrEqual(1e-6));
    // Rows are L2-normalised embeddings, so this is not a vacuous comparison of zeros.
    const norm = Math.hypot(...(out.data as number[]).slice(0, 128));
    expect(norm).toBeCloseTo(1, 4);

    // Each step ran on its own model (and scheduler).
    const stats = (name: string) => server.manager.serving.resolve(name).stats.snapshot();
    expect(stats('text_tokenizer').inference_stats.success.count).toBe(2);
    expect(stats('text_encoder_tiny').inference_stats.success.count).toBe(2);
    expect(stats('sentence_embedding').inference_stats.success.count).toBe(1);
  });

  it('metadata is the declared signature; bad input is named', async () => {
    const meta = await fetch(`${url}/v2/models/sentence_embedding`).then((r) => r.json() as Promise<{ inputs: Array<{ name: string }> }>);
    expect(meta.inputs.map((i) => i.name)).toEqual(['text']);
    const bad = await postJson(`${url}/v2/models/sentence_embedding/infer`, { inputs: [{ name: 'text', datatype: 'FP32', shape: [1], data: [1] }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain("input 'text' must be BYTES");
  });

  it('refuses steps that read a tensor nothing produces', () => {
    const broken = ENSEMBLE_CONFIG.replace('attention_mask: mask }, outputs: { embedding', 'attention_mask: masks }, outputs: { embedding');
    const config = parseModelConfig(YAML.parse(broken) as unknown, 'sentence_embedding', 'test');
    expect(() => checkEnsemble(config)).toThrow(/reads 'masks' for its input 'attention_mask'/);
  });
});
