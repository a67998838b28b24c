// Log lines written inside worker threads carry the request's correlation id, and requests
// whose clients went away neither leak nor hold up a clean shutdown.
import { describe, expect, it } from 'vitest';
import { makeRepository, startChild } from '../../support/server.js';

const LOGGER = {
  config: `runtime: js
max_batch_size: 0
inputs: [{ name: ms, datatype: INT32, shape: [1] }]
outputs: [{ name: ms, datatype: INT32, shape: [1] }]
warmup: []
`,
  files: {
    '1/model.mjs': `export async function predict({ ms }, { log }) {
  log.info({ ms: ms.data[0] }, 'predicting');
  await new Promise((r) => setTimeout(r, ms.data[0]));
  return [ms];
}`,
  },
};

const body = (ms: number) => JSON.stringify({ inputs: [{ name: 'ms', datatype: 'INT32', shape: [1], data: [ms] }] });

describe('worker logs and abandoned requests', () => {
  it('a js model logs with the caller correlation id; aborted requests do not delay shutdown', async () => {
    const repo = await makeRepository({ logger: LOGGER });
    const server = await startChild(['--model-repository', repo]);
    const ok = await fetch(`${server.url}/v2/models/logger/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-correlation-id': 'corr-42' }, body: body(1) });
    expect(ok.status).toBe(200);
    // Clients that give up: one while its request runs, several while theirs are queued.
    const aborted = Array.from({ length: 4 }, () => {
      const controller = new AbortController();
      const p = fetch(`${server.url}/v2/models/logger/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(300), signal: controller.signal }).catch((e: Error) => e.name);
      setTimeout(() => controller.abort(), 100);
      return p;
    });
    expect(await Promise.all(aborted)).toEqual(['AbortError', 'AbortError', 'AbortError', 'AbortError']);
    const t = performance.now();
    const code = await server.stop();
    expect(code).toBe(0);
    // The drain deadline is 30 s; a leaked in-flight count would hold the exit until then.
    expect(performance.now() - t).toBeLessThan(10_000);
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const fromWorker = lines.find((l) => l.msg === 'predicting' && Array.isArray(l.requestIds) && (l.requestIds as string[]).includes('corr-42'));
    expect(fromWorker).toMatchObject({ model: 'logger', version: '1', ms: 1 });
    expect(typeof fromWorker!.thread).toBe('number');
    expect(lines.find((l) => l.msg === 'shutdown complete')).toMatchObject({ clean: true });
  });
});
