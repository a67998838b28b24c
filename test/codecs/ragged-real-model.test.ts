// A real INT64 model batched with a non-zero pad value: padded batches answer as requests alone.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    text_encoder_tiny: {
      copyFrom: join(EXAMPLES, 'text_encoder_tiny'),
      // Token 3 pads the ids (any id works: the mask hides it from the mean pooling).
      config: 'max_batch_size: 16\nragged_inputs: { input_ids: { pad: 3 }, attention_mask: { pad: 0 } }\ndynamic_batching: { max_queue_delay_microseconds: 100000 }\nwarmup: []\n',
    },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

type Output = { name: string; shape: number[]; data: number[] };

function request(rows: number, length: number) {
  const ids = Array.from({ length: rows * length }, () => 1 + Math.floor(Math.random() * 4000));
  return [
    { name: 'input_ids', datatype: 'INT64', shape: [rows, length], data: ids },
    { name: 'attention_mask', datatype: 'INT64', shape: [rows, length], data: Array(rows * length).fill(1) },
  ];
}

async function infer(inputs: unknown[]): Promise<Output[]> {
  const r = await postJson(`${url}/v2/models/text_encoder_tiny/infer`, { inputs });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.outputs as Output[];
}

async function executionsAt(size: number): Promise<number> {
  const s = await getJson(`${url}/v2/models/text_encoder_tiny/stats`);
  const entry = s.body.model_stats[0].batch_stats.find((b: { batch_size: number }) => b.batch_size === size);
  return entry?.compute_infer.count ?? 0;
}

it('text_encoder_tiny padded with a non-zero INT64 pad value answers as the requests alone', async () => {
  const requests = [request(1, 4), request(2, 11), request(1, 7)];
  const alone: Output[][] = [];
  for (const inputs of requests) alone.push(await infer(inputs));
  const before = await executionsAt(4);
  const together = await Promise.all(requests.map(infer));
  expect(await executionsAt(4)).toBe(before + 1); // one merged, padded batch of 4 rows
  together.forEach((outputs, i) => {
    const out = outputs[0]!;
    const ref = alone[i]!.find((o) => o.name === out.name)!;
    expect(out.shape).toEqual(ref.shape);
    expect(Math.max(...out.data.map((v, k) => Math.abs(v - ref.data[k]!)))).toBeLessThanOrEqual(1e-5);
  });
});
