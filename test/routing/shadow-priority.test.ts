/**
 * A shadow version's worker threads run at a lower scheduling priority (Linux nice) while it is
 * a shadow, and the callers' threads do not; a version that stops being a shadow gets new
 * workers at normal priority. Nice values are read from the kernel (/proc/<pid>/task/<tid>/stat).
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { TrafficService } from '../../src/routing/service.js';
import { REPO_ROOT } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { niceOf, priorityScenario, type PriorityReport, type ScenarioOptions, type ThreadNice } from './shadow-priority-scenario.js';

const tids = (threads: ThreadNice[]) => threads.map((t) => t.tid).sort((a, b) => a - b);
const nices = (threads: ThreadNice[]) => [...new Set(threads.map((t) => t.nice))];

/** The callers' threads at 0, and version 2's at 0 after its promotion, on new threads. */
function expectCallersUntouchedAndPromotionRestores(report: PriorityReport): void {
  expect(report.whileShadow.completed).toBe(40);
  expect(report.whileShadow.main).toBe(0);
  expect(report.whileShadow.callers).toHaveLength(report.instances);
  expect(nices(report.whileShadow.callers)).toEqual([0]);
  expect(report.whileShadow.shadow).toHaveLength(report.instances);
  expect(nices(report.whileShadow.shadow)).toEqual([10]);
  // Nothing but the shadow's threads is lowered.
  expect(nices(report.whileShadow.lowered)).toEqual([10]);
  for (const t of report.whileShadow.callers) expect(tids(report.whileShadow.lowered)).not.toContain(t.tid);

  expect(report.afterPromotion.answeredBy).toEqual(['2']);
  expect(report.afterPromotion.shadow).toHaveLength(report.instances);
  expect(nices(report.afterPromotion.shadow)).toEqual([0]);
  for (const t of report.afterPromotion.shadow) expect(tids(report.whileShadow.shadow)).not.toContain(t.tid);
  expect(report.afterPromotion.lowered).toEqual([]);
}

async function inChild(options: ScenarioOptions): Promise<PriorityReport> {
  // Without privileges: as nobody when the tests run as root, else as the same (unprivileged) user.
  const root = process.geteuid?.() === 0;
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/routing/shadow-priority-child.ts', JSON.stringify(options)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(root ? { uid: 65534, gid: 65534, env: { ...process.env, HOME: '/tmp' } } : {}),
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code, err).toBe(0);
  return JSON.parse(out.trim().split('\n').pop()!) as PriorityReport;
}

describe('shadow version worker priority (real server, onnx)', () => {
  it('lowers the workers of a version made a shadow at run time in place, and gives it new workers when promoted', async () => {
    const report = await priorityScenario({ intraOpThreads: 1, shadowAtStart: false });
    expect(nices(report.beforeShadow)).toEqual([0]);
    // One intra-op thread: the run happens on the worker's own thread, lowered where it is.
    expect(tids(report.whileShadow.shadow)).toEqual(tids(report.beforeShadow));
    expect(tids(report.whileShadow.lowered)).toEqual(tids(report.whileShadow.shadow));
    expectCallersUntouchedAndPromotionRestores(report);
  }, 120_000);

  it('starts a configured shadow lowered, so the intra-op threads onnxruntime starts inherit it', async () => {
    const report = await priorityScenario({ intraOpThreads: 2, shadowAtStart: true });
    // Each worker and its session's pool thread.
    expect(report.whileShadow.lowered.length).toBeGreaterThanOrEqual(2 * report.instances);
    for (const t of report.whileShadow.shadow) expect(tids(report.whileShadow.lowered)).toContain(t.tid);
    expectCallersUntouchedAndPromotionRestores(report);
  }, 120_000);

  it('works without privileges: a runtime with its own threads gets new lowered workers, and new normal ones back', async () => {
    const report = await inChild({ intraOpThreads: 2, shadowAtStart: false });
    expect(report.euid).not.toBe(0);
    expect(nices(report.beforeShadow)).toEqual([0]);
    // Lowering in place would leave the sessions' pool threads at normal priority: new workers instead.
    for (const t of report.whileShadow.shadow) expect(tids(report.beforeShadow)).not.toContain(t.tid);
    expect(report.whileShadow.lowered.length).toBeGreaterThanOrEqual(2 * report.instances);
    expectCallersUntouchedAndPromotionRestores(report);
  }, 120_000);
});

describe('shadow version worker priority (real server, js)', () => {
  // Version 2 never ends a run of x == 1: its execution timeout terminates the worker, and piscina starts another.
  const GOOD = `export function predict({ x }) { return { y: { datatype: 'INT32', shape: x.shape, data: x.data.map((e) => e + 100) } }; }`;
  const HANGS = `export function predict({ x }) { if (x.data[0] === 1) { for (;;) {} } return { y: { datatype: 'INT32', shape: x.shape, data: x.data } }; }`;
  const CONFIG = `runtime: js
max_batch_size: 0
version_policy: { all: true }
inputs: [{ name: x, datatype: INT32, shape: [-1] }]
outputs: [{ name: y, datatype: INT32, shape: [-1] }]
execution: { timeout_ms: 300, unhealthy_after_timeouts: 100 }
warmup: []
`;

  it('a worker piscina starts in place of one the shadow hung takes the lowered priority; the callers are answered meanwhile', async () => {
    const repo = await makeRepository({ scorer: { config: CONFIG, files: { '1/model.mjs': GOOD, '2/model.mjs': HANGS } } });
    const { server, url } = await startInProcess(repo, {
      models: [{ repository: 'scorer', traffic: { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100, batch_window: 0, nice: 7 } } }],
    });
    try {
      const v2 = server.manager.serving.versionsOf('scorer').find((v) => v.version === '2')!;
      const [before] = await v2.workerPriorities();
      expect(niceOf(before!.tid)).toBe(7);
      const infer = async (value: number) => {
        const r = await fetch(`${url}/v2/models/scorer/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [value] }] }) });
        return { status: r.status, body: (await r.json()) as { model_version: string; outputs: Array<{ data: number[] }> } };
      };
      // The caller is answered by version 1 at once; the mirrored copy hangs version 2's worker.
      const answered = await infer(1);
      expect(answered.status).toBe(200);
      expect(answered.body.model_version).toBe('1');
      expect(answered.body.outputs[0]!.data).toEqual([101]);
      let after = before!;
      for (let i = 0; i < 200 && after.tid === before!.tid; i++) {
        await new Promise((r) => setTimeout(r, 25));
        [after] = await v2.workerPriorities();
      }
      expect(after.tid).not.toBe(before!.tid);
      expect(niceOf(after.tid)).toBe(7);
      const shadow = (await (await fetch(`${url}/v2/admin/models/scorer/traffic`)).json()) as { shadow: { errors: number; completed: number } };
      expect(shadow.shadow.errors).toBe(1);
      expect((await infer(5)).body.outputs[0]!.data).toEqual([105]);
    } finally {
      await server.shutdown(10_000);
      await rm(repo, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('traffic service: which versions it lowers', () => {
  it('lowers the shadow version to its nice, restores versions that stop being the shadow, never lowers a routed one', async () => {
    const calls: Array<[string, string, number]> = [];
    const policy = (raw: unknown) => new Map([['fraud', parseTrafficConfig(raw, 'fraud')]]);
    const service = await TrafficService.open(policy({ split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100 } }), {
      runOnVersion: async () => {
        throw new Error('not run in this test');
      },
      versionNice: (model, version, nice) => calls.push([model, version, nice]),
    });
    const settle = () => new Promise((r) => setImmediate(r));
    try {
      await settle();
      expect(calls).toEqual([['fraud', '2', 10]]);
      calls.length = 0;

      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 50, nice: 5 } }, 'test');
      await settle();
      expect(calls).toEqual([['fraud', '2', 5]]);
      calls.length = 0;

      // Same nice: nothing to do.
      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 10, nice: 5 } }, 'test');
      await settle();
      expect(calls).toEqual([]);

      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 3, percent: 100 } }, 'test');
      await settle();
      expect(calls).toEqual([
        ['fraud', '2', 0],
        ['fraud', '3', 10],
      ]);
      calls.length = 0;

      // A version callers are routed to is never lowered, shadow or not.
      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 50 }, { version: 3, weight: 50 }] }, shadow: { version: 3, percent: 100 } }, 'test');
      await settle();
      expect(calls).toEqual([['fraud', '3', 0]]);
      calls.length = 0;

      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100, nice: 0 } }, 'test');
      await settle();
      expect(calls).toEqual([['fraud', '2', 0]]);
      calls.length = 0;

      await service.setPolicy('fraud', { split: { variants: [{ version: 1, weight: 100 }] }, shadow: { version: 2, percent: 100 } }, 'test');
      await service.setPolicy('fraud', null, 'test');
      await settle();
      // Removing the stored policy brings back the configured one, whose shadow is version 2 at 10.
      expect(calls).toEqual([['fraud', '2', 10]]);
    } finally {
      await service.close();
    }
  });

  it('refuses a nice outside 0..19', () => {
    expect(() => parseTrafficConfig({ shadow: { version: 2, percent: 10, nice: 20 } }, 'fraud')).toThrow(/nice/);
    expect(() => parseTrafficConfig({ shadow: { version: 2, percent: 10, nice: -1 } }, 'fraud')).toThrow(/nice/);
  });
});
