import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable, type Table } from '../../src/monitoring/dataset.js';
import { DriftMetrics } from '../../src/monitoring/metrics.js';
import { DriftMonitor } from '../../src/monitoring/monitor.js';
import { DriftComputePool } from '../../src/monitoring/pool.js';
import { buildDriftProfile, type DriftProfile } from '../../src/monitoring/profile.js';
import { BC_TEST, BC_TRAIN, SHIFTS } from './support.js';

/** Row-major input features and labels of a table, with optional shifts applied. */
function rows(table: Table, shifted: boolean): { inputs: Float32Array; labels: Float64Array } {
  const features = table.columns.filter((c) => c.name !== 'label');
  const label = table.columns.find((c) => c.name === 'label')!.values as Float64Array;
  const inputs = new Float32Array(table.rows * features.length);
  for (let r = 0; r < table.rows; r++) {
    features.forEach((c, f) => {
      const v = (c.values as Float64Array)[r]!;
      inputs[r * features.length + f] = shifted && SHIFTS[c.name] ? SHIFTS[c.name]!(v) : v;
    });
  }
  return { inputs, labels: label };
}

describe('DriftMonitor', () => {
  const pool = new DriftComputePool();
  let profile: DriftProfile;
  let test: Table;
  let server: Server;
  let url: string;
  const received: string[] = [];

  beforeAll(async () => {
    profile = buildDriftProfile(await readTable(BC_TRAIN), { outputs: ['label'] });
    test = await readTable(BC_TEST);
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(body);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await pool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('judges each closed window in the pool, exports metrics, and fires the webhook once per decision', async () => {
    const registry = new Registry();
    const metrics = new DriftMetrics(registry);
    const reports: string[] = [];
    const monitor = new DriftMonitor({
      model: 'bc',
      version: 1,
      profile,
      pool,
      window: { maxRows: test.rows },
      metrics,
      actions: [{ kind: 'webhook', url }],
      onReport: (r) => reports.push(r.decision.severity),
    });
    const stable = rows(test, false);
    const moved = rows(test, true);
    // served row by row: a stable window, then two shifted ones
    for (const batch of [stable, moved, moved]) {
      for (let r = 0; r < test.rows; r++) {
        monitor.observe(batch.inputs.subarray(r * 30, (r + 1) * 30), [batch.labels[r]!]);
        if (r === test.rows - 1) await monitor.idle();
      }
    }
    await monitor.idle();
    expect(reports).toEqual(['none', 'severe', 'severe']);
    expect(monitor.report!.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
    expect(received).toHaveLength(1);
    expect(JSON.parse(received[0]!)).toMatchObject({ model: 'bc', version: 1, decision: { severity: 'severe' } });

    const text = await registry.metrics();
    expect(text).toContain('inferd_drift_windows_total{model="bc",version="1"} 3');
    expect(text).toContain('inferd_drift_severity{model="bc",version="1"} 3');
    expect(text).toContain('inferd_drift_feature_drifted{model="bc",version="1",feature="mean_radius"} 1');
    expect(text).toContain('inferd_drift_feature_drifted{model="bc",version="1",feature="mean_texture"} 0');
    expect(text).toMatch(/inferd_drift_score\{model="bc",version="1",feature="mean_radius",method="ks"\} [0-9.e-]+/);
    expect(text).toContain('inferd_drift_actions_total{model="bc",version="1",action="webhook",result="ok"} 1');
    metrics.forget('bc', '1');
    expect(await registry.metrics()).not.toContain('model="bc"');
  });

  it('drops a window that closes while the previous one is still judged', async () => {
    const monitor = new DriftMonitor({ model: 'bc', version: 1, profile, pool, window: { maxRows: 10 } });
    const { inputs, labels } = rows(test, false);
    monitor.observe(inputs.subarray(0, 30 * 30), labels.subarray(0, 30));
    await monitor.idle();
    expect(monitor.dropped).toBe(2);
    expect(monitor.report!.currentRows).toBe(10);
  });
});

describe('DriftMonitor fed by real model responses', () => {
  it('captures the breast_cancer model outputs (class, confidence, label) next to its inputs', async () => {
    const { loadRuntime } = await import('../../src/runtimes/index.js');
    const { scoreColumns } = await import('../../src/monitoring/outputs.js');
    const { BC_MODEL } = await import('./support.js');
    const runtime = await loadRuntime({
      kind: 'onnx',
      model: 'bc',
      version: '1',
      path: BC_MODEL,
      onnx: { intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableCpuMemArena: true, enableMemPattern: true, allowSpinning: false },
      parameters: {},
      warmup: [],
      logLevel: 'silent',
    });
    const pool = new DriftComputePool();
    try {
      const train = await readTable(BC_TRAIN);
      const test = await readTable(BC_TEST);
      const trainInputs = train.columns.filter((c) => c.name !== 'label');
      const scored = await scoreColumns(runtime, trainInputs);
      const profile = buildDriftProfile({ rows: train.rows, columns: [...trainInputs, ...scored] }, { outputs: scored.map((c) => c.name) });
      const monitor = new DriftMonitor({ model: 'bc', version: 1, profile, pool, window: { maxRows: test.rows } });
      expect(monitor.window.outputs).toEqual(['probabilities.class', 'probabilities.confidence', 'label']);
      const { inputs } = rows(test, true);
      // served in batches of 16, as the batcher would hand them over
      for (let start = 0; start < test.rows; start += 16) {
        const n = Math.min(16, test.rows - start);
        const batch = { name: 'features', datatype: 'FP32' as const, shape: [n, 30], data: inputs.slice(start * 30, (start + n) * 30) };
        const { outputs } = await runtime.run([batch], []);
        monitor.observeResponse(batch, outputs);
      }
      await monitor.idle();
      const report = monitor.report!;
      expect(report.currentRows).toBe(test.rows);
      expect(report.dataset.driftedColumns.sort()).toEqual(Object.keys(SHIFTS).sort());
      const outputs = report.columns.filter((c) => c.role === 'output');
      expect(outputs.map((c) => [c.name, c.method])).toEqual([
        ['probabilities.class', 'z'],
        ['probabilities.confidence', 'ks'],
        ['label', 'z'],
      ]);
      // larger radius and texture move predictions towards class 0 (malignant), not significantly
      // on 143 rows: the outputs are watched, the inputs carry the alarm here
      const predicted = outputs[0]!.chart as { kind: 'bars'; categories: string[]; reference: number[]; current: number[] };
      expect(predicted.categories).toEqual(['0', '1']);
      expect(predicted.current[0]!).toBeGreaterThan(predicted.reference[0]!);
      expect(outputs.map((c) => c.drifted)).toEqual([false, false, false]);
    } finally {
      await runtime.close();
      await pool.close();
    }
  });
});
