import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runBench, type BenchOptions } from '../../src/loadgen/index.js';
import { registerBenchCommand } from '../../src/cli/bench.js';
import { startFakeServer, type FakeServer } from './fake-server.js';

const servers: FakeServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function fake(opts: Parameters<typeof startFakeServer>[0] = {}): Promise<FakeServer> {
  const s = await startFakeServer(opts);
  servers.push(s);
  return s;
}

function base(url: string, extra: Partial<BenchOptions> = {}): BenchOptions {
  return {
    url,
    protocol: 'http',
    model: 'fake',
    load: { kind: 'concurrency', values: [2] },
    windowMs: 250,
    stabilityPercent: 10,
    maxTrials: 5,
    windows: 2,
    ...extra,
  };
}

const dir = mkdtempSync(path.join(tmpdir(), 'inferd-bench-test-'));

describe('closed loop against a fake OIP server', () => {
  it('counts every completed request once and reports latency', async () => {
    const s = await fake();
    const r = await runBench(base(s.url, { load: { kind: 'concurrency', values: [1, 4] } }));
    expect(r.steps).toHaveLength(2);
    expect(r.steps.map((x) => x.concurrency)).toEqual([1, 4]);
    let completed = 0;
    let sent = 0;
    for (const step of r.steps) {
      expect(step.errorCount).toBe(0);
      expect(step.successes).toBeGreaterThan(0);
      expect(step.measuredWindows).toBe(2);
      expect(step.windows.reduce((a, w) => a + w.successes, 0)).toBe(step.successes);
      expect(step.latency.count).toBe(step.successes);
      expect(step.latency.p50Us).toBeLessThanOrEqual(step.latency.p99Us);
      expect(step.latency.p99Us).toBeLessThanOrEqual(step.latency.maxUs);
      expect(step.throughput).toBeCloseTo((step.successes * 1000) / step.durationMs, 6);
      completed += step.successes;
      sent += step.sent;
    }
    // The server saw each measured request, plus at most one per loop sent as each step started.
    expect(s.inferCount).toBeGreaterThanOrEqual(completed);
    expect(s.inferCount).toBeLessThanOrEqual(sent + 1 + 4);
    expect(r.inferencesPerRequest).toBe(1);
    expect(r.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [1, 4] }]);
  });

  it('accounts errors by status, kept out of latency', async () => {
    const s = await fake({ failEvery: 4 });
    const r = await runBench(base(s.url));
    const step = r.steps[0]!;
    expect(Object.keys(step.errors)).toEqual(['503']);
    expect(step.errorSamples['503']).toContain('overloaded');
    const share = step.errorCount / (step.errorCount + step.successes);
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
    expect(step.latency.count).toBe(step.successes);
    expect(r.serverStats).toBe(false);
  });

  it('splits server time from the statistics deltas', async () => {
    const s = await fake({
      stats: true,
      statsNs: { queue: 150_000, computeInput: 10_000, computeInfer: 400_000, computeOutput: 40_000 },
    });
    const r = await runBench(base(s.url));
    expect(r.serverStats).toBe(true);
    expect(r.steps[0]!.server).toMatchObject({ queueUs: 150, computeInferUs: 400, computeUs: 450, requestUs: 600 });
    expect(s.statsCalls).toBeGreaterThanOrEqual(3);
  });

  it('survives chunked responses and servers that close connections', async () => {
    const s = await fake({ chunked: true, closeEvery: 7 });
    const r = await runBench(base(s.url, { load: { kind: 'concurrency', values: [3] } }));
    expect(r.steps[0]!.errorCount).toBe(0);
    expect(r.steps[0]!.successes).toBeGreaterThan(10);
  });

  it('works through node:http too', async () => {
    const s = await fake();
    const r = await runBench(base(s.url, { httpClient: 'node' }));
    expect(r.steps[0]!.errorCount).toBe(0);
    expect(r.steps[0]!.successes).toBeGreaterThan(10);
  });

  it('stops at the trial budget when the load never stabilizes, or earlier when it does', async () => {
    const s = await fake({ delayMs: 2 });
    const r = await runBench(base(s.url, { windows: undefined, maxTrials: 3, stabilityPercent: 1e-9 }));
    expect(r.steps[0]!.trials).toBe(3);
    expect(r.steps[0]!.stable).toBe(false);
    const r2 = await runBench(base(s.url, { windows: undefined, maxTrials: 6, stabilityPercent: 1e9 }));
    expect(r2.steps[0]!.trials).toBe(3);
    expect(r2.steps[0]!.stable).toBe(true);
    expect(r2.steps[0]!.measuredWindows).toBe(3);
  });

  it('counts a server that goes away as connection errors and finishes the run', async () => {
    const s = await startFakeServer();
    let closing: Promise<void> | undefined;
    const r = await runBench(
      base(s.url, {
        windowMs: 300,
        windows: 2,
        // The server stops as the first window ends: the second sees only refused connections.
        onProgress: (e) => {
          if (e.finished && e.window === 1) closing = s.close();
        },
      }),
    );
    await closing;
    const step = r.steps[0]!;
    expect(step.windows[0]!.successes).toBeGreaterThan(0);
    expect(step.errors['connection']).toBeGreaterThan(0);
    // Retries are paced, not a busy loop: two loops over ~300 ms make a few dozen attempts at most.
    expect(step.errors['connection']).toBeLessThan(200);
  });

  it('fails clearly for an unknown model or an unreachable server', async () => {
    const s = await fake();
    await expect(runBench(base(s.url, { model: 'nope' }))).rejects.toThrow(/404/);
    await expect(runBench(base('http://127.0.0.1:1'))).rejects.toThrow(/cannot reach/);
  });
});

describe('input data sent on the wire', () => {
  it('sends CSV rows in batches', async () => {
    const s = await fake();
    const csv = path.join(dir, 'rows.csv');
    writeFileSync(csv, 'a,b,c,d,label\n1,2,3,4,0\n5,6,7,8,1\n9,10,11,12,0\n');
    const r = await runBench(base(s.url, { inputData: csv, exclude: ['label'], batchSize: 2, load: { kind: 'concurrency', values: [1] } }));
    expect(r.inferencesPerRequest).toBe(2);
    expect(r.steps[0]!.inferencesPerSec).toBeCloseTo(r.steps[0]!.throughput * 2, 6);
    const first = s.received[0]![0]!;
    expect(first).toMatchObject({ name: 'features', datatype: 'FP32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] });
    expect(s.received[1]![0]!.data).toEqual([9, 10, 11, 12, 1, 2, 3, 4]);
  });

  it('sends JSON file data', async () => {
    const s = await fake();
    const file = path.join(dir, 'data.json');
    writeFileSync(file, JSON.stringify({ data: [{ features: [1, 2, 3, 4] }, { features: [4, 3, 2, 1] }] }));
    await runBench(base(s.url, { inputData: file, load: { kind: 'concurrency', values: [1] } }));
    expect(s.received[0]![0]!.data).toEqual([1, 2, 3, 4]);
    expect(s.received[1]![0]!.data).toEqual([4, 3, 2, 1]);
  });

  it('sends the binary tensor extension', async () => {
    const s = await fake();
    const r = await runBench(base(s.url, { binary: true, shapes: { features: [3, 4] } }));
    expect(r.steps[0]!.errorCount).toBe(0);
    const got = s.received[0]![0]!;
    expect(got.shape).toEqual([3, 4]);
    expect(got.raw!.length).toBe(3 * 4 * 4);
    expect(r.inferencesPerRequest).toBe(3);
  });
});

describe('open loop', () => {
  it('holds the requested rate on a constant schedule', async () => {
    const s = await fake();
    const r = await runBench(
      base(s.url, { load: { kind: 'rate', values: [200], distribution: 'constant' }, windowMs: 1000, windows: 2 }),
    );
    const step = r.steps[0]!;
    expect(step.requestRate).toBe(200);
    expect(step.sent / (step.durationMs / 1000)).toBeGreaterThan(200 * 0.8);
    expect(step.sent / (step.durationMs / 1000)).toBeLessThan(200 * 1.2);
    expect(step.throughput).toBeGreaterThan(200 * 0.75);
    expect(step.lateSends).toBeLessThanOrEqual(step.sent);
  });

  it('holds the requested rate on average on a Poisson schedule, and keeps sending while requests are slow', async () => {
    const s = await fake({ delayMs: 50 });
    const r = await runBench(base(s.url, { load: { kind: 'rate', values: [100], distribution: 'poisson' }, windowMs: 1000, windows: 2 }));
    const step = r.steps[0]!;
    const rate = step.sent / (step.durationMs / 1000);
    expect(rate).toBeGreaterThan(100 * 0.7);
    expect(rate).toBeLessThan(100 * 1.3);
    // With 50 ms per request and 100/s, a closed loop of one would reach 20/s at most.
    expect(step.throughput).toBeGreaterThan(50);
    expect(step.latency.p50Us).toBeGreaterThanOrEqual(50_000);
  });
});

describe('raw mode', () => {
  it('drives a non-OIP route with a fixed body, without metadata', async () => {
    const s = await fake();
    const body = JSON.stringify({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: [1, 1, 1, 1] }] });
    const r = await runBench({
      ...base(s.url),
      model: undefined,
      raw: { url: `${s.url}/v2/models/fake/infer`, body: Buffer.from(body) },
    });
    expect(r.protocol).toBe('raw');
    expect(r.steps[0]!.errorCount).toBe(0);
    expect(r.steps[0]!.successes).toBeGreaterThan(10);
    expect(s.received[0]![0]!.data).toEqual([1, 1, 1, 1]);
  });
});

describe('inferd bench command', () => {
  it('prints a table and writes JSON and CSV', async () => {
    const s = await fake({ stats: true });
    const json = path.join(dir, 'out.json');
    const csv = path.join(dir, 'out.csv');
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    try {
      const program = new Command('inferd').exitOverride();
      registerBenchCommand(program);
      await program.parseAsync(
        ['bench', '-m', 'fake', '-u', s.url, '--concurrency-range', '1,2', '--window-ms', '200', '--windows', '2', '--json', json, '--csv', csv, '--no-progress'],
        { from: 'user' },
      );
    } finally {
      spy.mockRestore();
    }
    const text = out.join('');
    expect(text).toMatch(/concurrency\s+req\/s\s+p50 ms/);
    expect(text).toMatch(/queue ms/);
    const report = JSON.parse(readFileSync(json, 'utf8'));
    expect(report.steps.map((x: { concurrency: number }) => x.concurrency)).toEqual([1, 2]);
    const lines = readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^mode,concurrency,request_rate,throughput_rps/);
    expect(lines[1]).toMatch(/^concurrency,1,,/);
  });

  it('rejects conflicting load options', async () => {
    const program = new Command('inferd').exitOverride();
    program.configureOutput({ writeErr: () => {} });
    registerBenchCommand(program).exitOverride();
    await expect(
      program.parseAsync(['bench', '-m', 'x', '--concurrency-range', '1', '--request-rate-range', '10'], { from: 'user' }),
    ).rejects.toThrow(/exclusive/);
  });
});
