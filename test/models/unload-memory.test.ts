// Unloading frees what loading took: 50 load / infer / unload cycles through the data plane
// leave the process's resident memory within a generous bound (worker threads, native
// onnxruntime sessions and schedulers all go). bench/lifecycle/rss.ts reports the figures.
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { InferenceRequest } from '../../src/core/types.js';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { BC_REQUEST } from './support.js';
import { callContext } from '../../src/pipeline/context.js';

let server: InferdServer;

beforeAll(async () => {
  const repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
  ({ server } = await startInProcess(repo, { model_control: { mode: 'explicit' } }));
});

afterAll(async () => {
  await server?.shutdown(5000);
});

async function cycle(): Promise<void> {
  await server.plane.loadModel(callContext(undefined), 'breast_cancer');
  const answer = await server.plane.infer(callContext('breast_cancer', undefined, { requestId: 'cycle' }), structuredClone(BC_REQUEST) as unknown as InferenceRequest);
  expect(answer.outputs[0]!.shape).toEqual([8, 2]);
  await server.plane.unloadModel(callContext(undefined), 'breast_cancer');
}

it('50 load/unload cycles grow RSS by less than 150 MB', { timeout: 180_000 }, async () => {
  // The first cycles pay for one-time allocations (onnxruntime's globals, code caches).
  for (let i = 0; i < 3; i++) await cycle();
  const before = process.memoryUsage().rss;
  for (let i = 0; i < 50; i++) await cycle();
  const after = process.memoryUsage().rss;
  const growthMb = (after - before) / 2 ** 20;
  expect(server.manager.serving.loaded()).toEqual([]);
  expect(server.manager.serving.loadCount('breast_cancer')).toBe(53);
  expect(growthMb).toBeLessThan(150);
});
