// Input ranges from a profile: reject (400 naming every feature out of range and its allowed
// range) or count (accepted, counted per feature through the observer's callback), from the
// profile stored with a registry version or from a reference CSV named in config.yaml.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callContext } from '../../src/pipeline/context.js';
import { DataPlane } from '../../src/pipeline/dataplane.js';
import { standardPolicies } from '../../src/pipeline/standard.js';
import type { InferenceRequest } from '../../src/core/types.js';
import { ModelManager } from '../../src/models/manager.js';
import { ModelRepository } from '../../src/models/repository.js';
import type { InferdServer } from '../../src/server/index.js';
import { profileFromCsv, type InputProfile } from '../../src/validation/ranges.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { BC_ONNX, BC_SERVING_CONFIG, BC_TRAIN, request, sqliteRegistry, until, type TempRegistry } from './support.js';

let profile: InputProfile;
let trainRow: number[];

function features(...rows: number[][]) {
  return { inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 30], data: rows.flat() }] };
}

/** A training row with some features replaced (by index). */
function withValues(changes: Record<number, number>): number[] {
  const row = [...trainRow];
  for (const [i, v] of Object.entries(changes)) row[Number(i)] = v;
  return row;
}

const MEAN_RADIUS = 0;
const WORST_AREA = 23;

beforeAll(async () => {
  profile = await profileFromCsv(BC_TRAIN, { exclude: ['label'] });
  const lines = (await readFile(BC_TRAIN, 'utf8')).split('\n');
  trainRow = lines[1]!.split(',').slice(0, 30).map(Number);
});

describe('ranges from the profile stored with a registry version', () => {
  let reg: TempRegistry;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    reg = await sqliteRegistry();
    await reg.registry.register('breast_cancer', BC_ONNX);
    await reg.registry.setProfile('breast_cancer', 1, profile);
    await reg.registry.register('unprofiled', BC_ONNX);
    const entry = (name: string, reference: string, input_ranges: unknown) => ({
      registry: reference,
      name,
      config: { ...BC_SERVING_CONFIG, input_ranges },
    });
    ({ server, url } = await startInProcess(await makeRepository({}), {
      registry: reg.url,
      registry_options: { home: reg.home },
      model_control: { mode: 'poll', poll_interval_ms: 100 },
      models: [
        entry('bc_reject', 'breast_cancer@1', { mode: 'reject', bound: 'minmax' }),
        entry('bc_percentile', 'breast_cancer@1', { mode: 'reject', bound: 'percentile' }),
        entry('bc_count', 'breast_cancer@1', { mode: 'count', bound: 'minmax' }),
        entry('unprofiled', 'unprofiled@1', { mode: 'reject' }),
      ],
    }));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
  });

  it('accepts values inside the reference ranges', async () => {
    const r = await request(url, 'POST', '/v2/models/bc_reject/infer', features(trainRow));
    expect(r.status).toBe(200);
  });

  it('reject: answers 400 listing every offending feature and its allowed range', async () => {
    const bad = withValues({ [MEAN_RADIUS]: 500, [WORST_AREA]: -1 });
    const r = await request(url, 'POST', '/v2/models/bc_reject/infer', features(trainRow, bad, bad));
    expect(r.status).toBe(400);
    const radius = profile.features[MEAN_RADIUS]!;
    const area = profile.features[WORST_AREA]!;
    expect(r.body.error).toContain(`'mean_radius' allowed [${Math.fround(radius.min)}, ${Math.fround(radius.max)}], got 500 (row 1), 500 (row 2)`);
    expect(r.body.error).toContain(`'worst_area' allowed [${Math.fround(area.min)}, ${Math.fround(area.max)}], got -1 (row 1), -1 (row 2)`);
    expect(r.body.error).toMatch(/in 2 features/);
    // NaN is never in range.
    const nan = await request(url, 'POST', '/v2/models/bc_reject/infer', features(withValues({ [MEAN_RADIUS]: Number.NaN })));
    expect(nan.status).toBe(400);
  });

  it('percentile bounds are tighter than min/max', async () => {
    const radius = profile.features[MEAN_RADIUS]!;
    const between = withValues({ [MEAN_RADIUS]: (radius.p99 + radius.max) / 2 });
    expect((await request(url, 'POST', '/v2/models/bc_reject/infer', features(between))).status).toBe(200);
    const r = await request(url, 'POST', '/v2/models/bc_percentile/infer', features(between));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain(`'mean_radius' allowed [${Math.fround(radius.p01)}, ${Math.fround(radius.p99)}]`);
    expect(r.body.error).toContain('p01..p99');
  });

  it('count: accepts the request and counts each feature out of range', async () => {
    const bad = withValues({ [MEAN_RADIUS]: 500, [WORST_AREA]: -1 });
    const r = await request(url, 'POST', '/v2/models/bc_count/infer', features(bad, trainRow, bad));
    expect(r.status).toBe(200);
    const [version] = server.manager.serving.versionsOf('bc_count');
    expect(Object.fromEntries(version!.outOfRange)).toEqual({ mean_radius: 2, worst_area: 2 });
    const status = await request(url, 'GET', '/v2/admin/models/bc_count');
    expect(status.body.versions[0]).toMatchObject({ ranges: { input: 'features', mode: 'count', bound: 'minmax', features: 30 }, out_of_range: { mean_radius: 2, worst_area: 2 } });
  });

  it('a version without a stored profile serves unchecked until a profile is stored, which applies without a reload', async () => {
    const bad = features(withValues({ [MEAN_RADIUS]: 500 }));
    expect((await request(url, 'POST', '/v2/models/unprofiled/infer', bad)).status).toBe(200);
    const loads = server.manager.serving.loadCount('unprofiled');
    await reg.registry.setProfile('unprofiled', 1, profile);
    await until(async () => ((await request(url, 'POST', '/v2/models/unprofiled/infer', bad)).status === 400 ? true : undefined), 'the profile to apply');
    expect(server.manager.serving.loadCount('unprofiled')).toBe(loads);
  });
});

describe('ranges from a reference CSV named in config.yaml', () => {
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    const base = await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'), 'utf8');
    const repo = await makeRepository({
      bc_relative: { copyFrom: join(EXAMPLES, 'breast_cancer'), config: `${base}\ninput_ranges: { reference: data/train.csv, exclude: [label] }\n` },
      bc_absolute_count: {
        copyFrom: join(EXAMPLES, 'breast_cancer'),
        config: `${base}\ninput_ranges: { reference: ${JSON.stringify(BC_TRAIN)}, exclude: [label], mode: count, bound: percentile }\n`,
      },
      bc_no_reference: { copyFrom: join(EXAMPLES, 'breast_cancer'), config: `${base}\ninput_ranges: { mode: reject }\n` },
      bc_with_label: { copyFrom: join(EXAMPLES, 'breast_cancer'), config: `${base}\ninput_ranges: { reference: ${JSON.stringify(BC_TRAIN)} }\n` },
    });
    await mkdir(join(repo, 'bc_relative', 'data'));
    await copyFile(BC_TRAIN, join(repo, 'bc_relative', 'data', 'train.csv'));
    ({ server, url } = await startInProcess(repo));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
  });

  it('reject with a path relative to the model directory', async () => {
    expect((await request(url, 'POST', '/v2/models/bc_relative/infer', features(trainRow))).status).toBe(200);
    const r = await request(url, 'POST', '/v2/models/bc_relative/infer', features(withValues({ [WORST_AREA]: 1e6 })));
    expect(r.status).toBe(400);
    expect(r.body.error).toContain(`'worst_area' allowed [${Math.fround(profile.features[WORST_AREA]!.min)}, ${Math.fround(profile.features[WORST_AREA]!.max)}], got 1000000 (row 0)`);
  });

  it('count with an absolute path and percentile bounds', async () => {
    const r = await request(url, 'POST', '/v2/models/bc_absolute_count/infer', features(withValues({ [WORST_AREA]: 1e6 })));
    expect(r.status).toBe(200);
    expect(Object.fromEntries(server.manager.serving.versionsOf('bc_absolute_count')[0]!.outOfRange)).toEqual({ worst_area: 1 });
  });

  it('refuses to load a model whose ranges cannot apply, saying why', async () => {
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toContainEqual({ name: 'bc_no_reference', state: 'UNAVAILABLE', reason: expect.stringMatching(/input_ranges needs 'reference'/) });
    expect(index.body).toContainEqual({ name: 'bc_with_label', state: 'UNAVAILABLE', reason: expect.stringMatching(/30 values per row but the profile has 31 features \(exclude the label column\)/) });
  });
});

describe('the out-of-range callback', () => {
  it('receives model, version, feature and count for each request in count mode', async () => {
    const base = await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'), 'utf8');
    const repo = await makeRepository({
      breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer'), config: `${base}\ninput_ranges: { reference: ${JSON.stringify(BC_TRAIN)}, exclude: [label], mode: count }\n` },
    });
    const calls: Array<[string, string, string, number]> = [];
    const manager = new ModelManager(new ModelRepository(repo), {
      logger: pino({ level: 'silent' }),
      observer: { onOutOfRange: (model, version, feature, count) => calls.push([model, version, feature, count]) },
    });
    const plane = new DataPlane(manager, { policies: (self) => standardPolicies({ manager, plane: self }) });
    try {
      await manager.loadAll();
      const request = features(withValues({ [MEAN_RADIUS]: 500, [WORST_AREA]: 9999 }), withValues({ [WORST_AREA]: 9999 })) as unknown as InferenceRequest;
      const answer = await plane.infer(callContext('breast_cancer', undefined, { requestId: 'r' }), request);
      expect(answer.outputs[0]!.shape).toEqual([2, 2]);
      expect(calls).toEqual([
        ['breast_cancer', '1', 'mean_radius', 1],
        ['breast_cancer', '1', 'worst_area', 2],
      ]);
    } finally {
      await manager.close();
    }
  });
});
