// Dynamic batching with the real example models: requests of mixed batch sizes (and, for the
// text encoder, mixed sequence lengths padded into one batch) get exactly the answers they get
// alone, for every output of every model.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';

let server: InferdServer;
let url: string;

// A long queue delay makes concurrent requests share a batch deterministically.
const BATCHED = 'dynamic_batching: { max_queue_delay_microseconds: 100000 }\nwarmup: []\n';

beforeAll(async () => {
  const repo = await makeRepository({
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer'), config: `max_batch_size: 64\n${BATCHED}` },
    digits: { copyFrom: join(EXAMPLES, 'digits'), config: `max_batch_size: 32\n${BATCHED}` },
    text_encoder_tiny: {
      copyFrom: join(EXAMPLES, 'text_encoder_tiny'),
      config: `max_batch_size: 16\nragged_inputs: { input_ids: { pad: 0 }, attention_mask: { pad: 0 } }\n${BATCHED}`,
    },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

type Input = { name: string; datatype: string; shape: number[]; data: number[] };

function random(n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => Math.round(Math.random() * scale * 1000) / 1000);
}

async function solo(model: string, inputs: Input[]) {
  const r = await postJson(`${url}/v2/models/${model}/infer`, { inputs });
  expect(r.status).toBe(200);
  return r.body.outputs as Array<{ name: string; shape: number[]; data: number[] }>;
}

/** Executions so far at the given batch size. */
async function executionsAt(model: string, size: number): Promise<number> {
  const s = await getJson(`${url}/v2/models/${model}/stats`);
  const entry = s.body.model_stats[0].batch_stats.find((b: { batch_size: number }) => b.batch_size === size);
  return entry?.compute_infer.count ?? 0;
}

async function compare(model: string, requests: Input[][]): Promise<void> {
  const alone: Array<Array<{ name: string; shape: number[]; data: number[] }>> = [];
  for (const inputs of requests) alone.push(await solo(model, inputs));
  const rows = requests.reduce((n, r) => n + r[0]!.shape[0]!, 0);
  const before = await executionsAt(model, rows);
  const together = await Promise.all(requests.map((inputs) => solo(model, inputs)));
  // The concurrent requests really ran as one merged batch.
  expect(await executionsAt(model, rows)).toBe(before + 1);
  together.forEach((outputs, i) => {
    for (const out of outputs) {
      const ref = alone[i]!.find((o) => o.name === out.name)!;
      expect(out.shape, `${model} request ${i} output ${out.name}`).toEqual(ref.shape);
      const worst = Math.max(...out.data.map((v, k) => Math.abs(v - ref.data[k]!)));
      expect(worst, `${model} request ${i} output ${out.name}`).toBeLessThanOrEqual(1e-5);
    }
  });
}

describe('batched answers equal solo answers', () => {
  it('breast_cancer: requests of 1, 3 and 2 rows, both outputs', async () => {
    await compare('breast_cancer', [1, 3, 2].map((rows) => [{ name: 'features', datatype: 'FP32', shape: [rows, 30], data: random(rows * 30, 100) }]));
  });

  it('digits: requests of 2, 1 and 4 images', async () => {
    await compare('digits', [2, 1, 4].map((rows) => [{ name: 'image', datatype: 'FP32', shape: [rows, 1, 8, 8], data: random(rows * 64) }]));
  });

  it('text_encoder_tiny: different sequence lengths padded into one batch change no result', async () => {
    const request = (rows: number, length: number): Input[] => {
      const ids = Array.from({ length: rows * length }, () => 1 + Math.floor(Math.random() * 4000));
      return [
        { name: 'input_ids', datatype: 'INT64', shape: [rows, length], data: ids },
        { name: 'attention_mask', datatype: 'INT64', shape: [rows, length], data: Array(rows * length).fill(1) },
      ];
    };
    await compare('text_encoder_tiny', [request(1, 5), request(2, 12), request(1, 3)]);
  });
});
