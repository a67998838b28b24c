// Inference never runs on the event loop: while workers run mobilenet_v2 back to back, the
// liveness probe stays fast. The bound is deliberately generous (the benchmark measures it).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { SHARED_MODELS } from '../../support/paths.js';
import { makeRepository, startInProcess } from '../../support/server.js';

let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    mobilenet_v2: { copyFrom: join(SHARED_MODELS, 'mobilenet_v2'), config: 'max_batch_size: 4\ninstances: 1\nonnx: { intra_op_threads: 1 }\nwarmup: []\n' },
  });
  ({ server, url } = await startInProcess(repo));
});

afterAll(async () => {
  await server?.shutdown(10_000);
});

it('GET /health stays fast while mobilenet_v2 runs back to back', async () => {
  const data = new Array(4 * 3 * 224 * 224).fill(0.5);
  const body = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [4, 3, 224, 224], data }] });
  let stop = false;
  let inferences = 0;
  const load = (async () => {
    while (!stop) {
      const r = await fetch(`${url}/v2/models/mobilenet_v2/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await r.arrayBuffer();
      expect(r.status).toBe(200);
      inferences++;
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  const latencies: number[] = [];
  for (let i = 0; i < 100; i++) {
    const t = performance.now();
    const r = await fetch(`${url}/health`);
    await r.text();
    latencies.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 5));
  }
  stop = true;
  await load;
  latencies.sort((a, b) => a - b);
  const p50 = latencies[49]!;
  expect(inferences).toBeGreaterThan(2);
  // A 4-image mobilenet batch takes ~60-150 ms here; on the event loop every probe would wait for it.
  expect(p50).toBeLessThan(25);
});
