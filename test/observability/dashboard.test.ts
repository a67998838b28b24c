import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { buildDashboard, dashboardQueries, renderDashboard, type GrafanaDashboard } from '../../src/observability/dashboard.js';
import { Metrics } from '../../src/observability/metrics.js';
import { buildRules } from '../../src/observability/rules.js';
import { parseExposition } from './exposition.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const deployed = join(repoRoot, 'deploy', 'grafana', 'inferd-dashboard.json');

/** Every series name a fully exercised Metrics renders. */
async function renderedNames(): Promise<Set<string>> {
  const metrics = new Metrics();
  const v = metrics.registerModelVersion('m', '1', { platform: 'onnx' });
  v.inference('rest', 0.1, 'success');
  v.failure('timeout');
  v.queueTime(0.01);
  v.computeTime(0.01);
  v.batchSize(4);
  v.queueSize(1);
  v.inFlight(1);
  v.predictions([{ name: 'p', datatype: 'FP32', shape: [1, 2], data: Float32Array.from([0.3, 0.7]) }]);
  metrics.forVersion('r', '1').predictions([{ name: 'y', datatype: 'FP32', shape: [1], data: Float32Array.from([3]) }]);
  v.outOfRange('x', 1);
  metrics.observeRequest('rest', '/v2/models/:model/infer', 200, 0.1);
  return new Set(parseExposition(await metrics.render()).map((l) => l.name));
}

describe('Grafana dashboard', () => {
  test('deploy/grafana/inferd-dashboard.json parses and is the generated dashboard', () => {
    const text = readFileSync(deployed, 'utf8');
    const parsed = JSON.parse(text) as GrafanaDashboard;
    expect(parsed).toEqual(buildDashboard());
    expect(text).toBe(renderDashboard());
    expect(parsed.schemaVersion).toBe(39);
  });

  test('panels have unique ids, do not overlap, and use the data source variable', () => {
    const dashboard = buildDashboard();
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          const cell = `${x},${y}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type === 'timeseries') expect(p.datasource?.uid).toBe('${datasource}');
    }
    expect(dashboard.templating.list.map((v) => (v as { name: string }).name)).toEqual(['datasource', 'model', 'version']);
  });

  test('covers the panels operators need', () => {
    const titles = buildDashboard().panels.map((p) => p.title);
    for (const wanted of [
      'Inference rate',
      'Error ratio',
      'Inference latency p50 / p95 / p99',
      'Queue vs compute time (p95)',
      'Batch size',
      'In flight and queued',
      'Predicted class distribution',
      'Confidence (p10 / p50)',
      'Low-confidence ratio',
      'Out-of-range inputs (top 10 features)',
      'Error budget burn rate (objective 99.9%)',
      'Latency budget burn rate (95% within 0.5s)',
      'Availability budget burn rate (objective 99.5%)',
      'Event-loop lag',
    ]) {
      expect(titles).toContain(wanted);
    }
  });

  test('every series a query names is one the server exports or the rules record', async () => {
    const known = await renderedNames();
    for (const group of buildRules().groups) for (const rule of group.rules) if ('record' in rule) known.add(rule.record);
    const unknown: string[] = [];
    const checked = new Set<string>();
    for (const { panel, expr } of dashboardQueries(buildDashboard())) {
      for (const [name] of expr.matchAll(/\b(?:inferd[:_]|nodejs_|process_)[a-zA-Z0-9_:]+/g)) {
        checked.add(name);
        if (!known.has(name)) unknown.push(`${panel}: ${name}`);
      }
    }
    expect(unknown).toEqual([]);
    expect(checked.size).toBeGreaterThan(25);
  });
});
