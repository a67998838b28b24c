/**
 * server.worker_nice: the model worker threads, the threads onnxruntime starts from them and the
 * JSON decoder threads run at that nice value, the event loop's thread at the process's own.
 * Nice values are read from the kernel (/proc/<pid>/task/<tid>/stat), thread by thread.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { niceOf } from '../routing/shadow-priority-scenario.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';

const linux = process.platform === 'linux';

/** tid → nice of every thread of this process not at the main thread's nice. */
async function loweredThreads(): Promise<Map<number, number>> {
  const { readdirSync } = await import('node:fs');
  const base = niceOf(process.pid);
  const out = new Map<number, number>();
  for (const name of readdirSync(`/proc/${process.pid}/task`)) {
    try {
      const nice = niceOf(Number(name));
      if (nice !== base) out.set(Number(name), nice);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

interface Served {
  server: InferdServer;
  url: string;
  repo: string;
}

async function serve(intraOpThreads: number, instances: number, serverOptions: Record<string, unknown>): Promise<Served> {
  const repo = await makeRepository({ breast_cancer: { copyFrom: path.join(EXAMPLES, 'breast_cancer') } });
  const configFile = path.join(repo, 'breast_cancer', 'config.yaml');
  const config = (await readFile(configFile, 'utf8')).replace('instances: 1', `instances: ${instances}`).replace('intra_op_threads: 1', `intra_op_threads: ${intraOpThreads}`);
  await writeFile(configFile, config);
  // Every JSON infer body of 1 KiB or more goes to the decoder threads.
  const { server, url } = await startInProcess(repo, { server: { json_offload_bytes: 1024, ...serverOptions } });
  return { server, url, repo };
}

/** A JSON request of 8 rows (about 2 KB): decoded in a decoder thread, which starts with it. */
async function inferLarge(url: string): Promise<void> {
  const rows = 8;
  const body = { inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 30], data: Array.from({ length: rows * 30 }, (_, i) => ((i * 7919) % 1000) / 997) }] };
  const text = JSON.stringify(body);
  expect(text.length).toBeGreaterThan(1024);
  const r = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
  expect(r.status, await r.clone().text()).toBe(200);
  const answer = (await r.json()) as { outputs: Array<{ name: string; shape: number[] }> };
  expect(answer.outputs.find((o) => o.name === 'label')?.shape).toEqual([rows]);
}

async function stop(served: Served | undefined): Promise<void> {
  await served?.server.shutdown(10_000);
  if (served) await rm(served.repo, { recursive: true, force: true });
}

/** Threads lowered since `before` was taken (onnxruntime's process-wide threads outlive a server). */
function since(before: Map<number, number>, now: Map<number, number>): Map<number, number> {
  return new Map([...now].filter(([tid]) => !before.has(tid)));
}

describe.runIf(linux)('server.worker_nice (real server, onnx, Linux)', () => {
  it('runs the model workers and the JSON decoder threads at the nice asked for, the event loop unchanged', async () => {
    let served: Served | undefined;
    try {
      const before = await loweredThreads();
      served = await serve(1, 2, { worker_nice: 4, json_decode_threads: 1 });
      const version = served.server.manager.serving.versionsOf('breast_cancer')[0]!;
      const workers = await version.workerPriorities();
      expect(workers).toHaveLength(2);
      for (const w of workers) expect(niceOf(w.tid)).toBe(4);
      const loaded = since(before, await loweredThreads());
      for (const w of workers) expect(loaded.has(w.tid)).toBe(true);
      // The decoder thread starts with the first large body, lowered.
      await inferLarge(served.url);
      const decoders = since(loaded, since(before, await loweredThreads()));
      expect([...decoders.values()]).toEqual([4]);
      expect(niceOf(process.pid)).toBe(0);
      expect([...new Set(since(before, await loweredThreads()).values())]).toEqual([4]);
    } finally {
      await stop(served);
    }
  }, 120_000);

  it('lowers the intra-op threads onnxruntime starts, which inherit the worker thread\'s nice', async () => {
    let served: Served | undefined;
    try {
      const before = await loweredThreads();
      served = await serve(2, 1, { worker_nice: 3, json_decode_threads: 2 });
      const loaded = since(before, await loweredThreads());
      // The worker and its session's pool thread.
      expect(loaded.size).toBeGreaterThanOrEqual(2);
      await inferLarge(served.url);
      // And the two decoder threads (piscina starts the second one in the background).
      let all = since(before, await loweredThreads());
      for (let i = 0; i < 200 && all.size < loaded.size + 2; i++) {
        await new Promise((r) => setTimeout(r, 25));
        all = since(before, await loweredThreads());
      }
      expect(all.size).toBe(loaded.size + 2);
      expect([...new Set(all.values())]).toEqual([3]);
    } finally {
      await stop(served);
    }
  }, 120_000);

  it('keeps every thread it starts at the process\'s priority with worker_nice 0', async () => {
    let served: Served | undefined;
    try {
      const before = await loweredThreads();
      served = await serve(2, 1, { worker_nice: 0 });
      await inferLarge(served.url);
      expect([...since(before, await loweredThreads()).entries()]).toEqual([]);
    } finally {
      await stop(served);
    }
  }, 120_000);
});
