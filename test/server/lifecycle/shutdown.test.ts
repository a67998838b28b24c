// Graceful shutdown of a real process: under concurrent load, SIGTERM loses no accepted request.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES } from '../../support/paths.js';
import { makeRepository, startChild } from '../../support/server.js';

const BODY = JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(30).fill(1) }] });

describe('SIGTERM', () => {
  it('answers every accepted request, refuses new ones with 503 + Connection: close, and exits 0', async () => {
    // A queue delay keeps requests queued when the signal lands, so the drain has real work.
    const repo = await makeRepository({
      breast_cancer: {
        copyFrom: join(EXAMPLES, 'breast_cancer'),
        config: 'max_batch_size: 8\ndynamic_batching: { max_queue_delay_microseconds: 20000 }\n',
      },
    });
    const server = await startChild(['--model-repository', repo]);
    const results: Array<{ status: number; connection: string | null } | { error: string }> = [];
    let stop = false;
    const client = async () => {
      while (!stop) {
        try {
          const r = await fetch(`${server.url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY });
          const body = (await r.json()) as { outputs?: unknown[] };
          if (r.status === 200) expect(body.outputs).toHaveLength(2);
          results.push({ status: r.status, connection: r.headers.get('connection') });
        } catch (error) {
          // Connection refused after the listener closed: never accepted, so nothing was lost.
          const cause = (error as { cause?: { code?: string } }).cause?.code ?? String(error);
          results.push({ error: cause });
          if (cause === 'ECONNREFUSED') return;
        }
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await new Promise((r) => setTimeout(r, 500));
    const before = results.length;
    server.process.kill('SIGTERM');
    const code = await server.exited;
    stop = true;
    await Promise.all(clients);
    expect(code).toBe(0);
    expect(before).toBeGreaterThan(0);
    const ok = results.filter((r) => 'status' in r && r.status === 200).length;
    const refused = results.filter((r) => 'status' in r && r.status === 503);
    const other = results.filter((r) => 'status' in r && r.status !== 200 && r.status !== 503);
    // Every request either completed (200), was refused up front (503, Connection: close) or never connected.
    expect(other).toEqual([]);
    for (const r of refused) expect((r as { connection: string | null }).connection).toBe('close');
    const errors = results.filter((r) => 'error' in r).map((r) => (r as { error: string }).error);
    for (const e of errors) expect(['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET']).toContain(e);
    expect(ok).toBeGreaterThan(before - 1);
    expect(server.output()).toMatch(/shutdown complete/);
  });

  it('past the drain deadline, running and queued requests get 503 at once and the exit code is non-zero', async () => {
    const repo = await makeRepository({
      slow: {
        config: `runtime: js
max_batch_size: 0
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
warmup: []
`,
        files: { '1/model.mjs': 'export async function predict({ x }) { await new Promise((r) => setTimeout(r, 3000)); return { y: x }; }' },
      },
    });
    const server = await startChild(['--model-repository', repo, '--log-level', 'warn'], { INFERD_SHUTDOWN__DEADLINE_MS: '300' });
    const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [1] }] });
    const inflight = Array.from({ length: 3 }, () =>
      fetch(`${server.url}/v2/models/slow/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }),
        (e: Error) => ({ status: 0, body: { error: e.message } }),
      ),
    );
    await new Promise((r) => setTimeout(r, 300));
    server.process.kill('SIGTERM');
    const code = await server.exited;
    const answers = await Promise.all(inflight);
    expect(code).toBe(1);
    // The deadline is a hard bound: the run in progress is cut off and the queued ones refused, all with 503.
    expect(answers.map((a) => a.status)).toEqual([503, 503, 503]);
    for (const a of answers) expect(a.body.error).toMatch(/the server shut down before model 'slow' version 1 answered this request/);
  });
});
