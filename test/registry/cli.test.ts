import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ModelVersion, RegisteredModel, RegistryEvent } from '../../src/registry/types.js';
import type { InputProfile } from '../../src/validation/ranges.js';
import { runCli } from './cli-runner.js';
import { BACKENDS, BREAST_CANCER, BREAST_CANCER_TRAIN, DIGITS, repoRoot, retrainedCopy, sqliteBackend, type Fixture } from './fixtures.js';

const execFileAsync = promisify(execFile);

describe.each(BACKENDS)('inferd models on $kind', (backend) => {
  let fx: Fixture;
  const savedHome = process.env['INFERD_HOME'];

  beforeAll(() => backend.start());
  afterAll(() => backend.stop());
  beforeEach(async () => {
    fx = await backend.fixture();
    // Where a postgres registry keeps its artifacts when no home is given.
    process.env['INFERD_HOME'] = fx.home;
  });
  afterEach(async () => {
    if (savedHome === undefined) delete process.env['INFERD_HOME'];
    else process.env['INFERD_HOME'] = savedHome;
    await fx.cleanup();
  });

  const cli = (...args: string[]) => runCli([...args, '--registry', fx.url]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await cli(...args, '--json');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as T;
  };

  it('registers, lists and shows versions with lineage', async () => {
    const first = await cli('register', 'bc', BREAST_CANCER, '--description', 'MLP classifier');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('registered bc version 1 (1.0.0), sha256 ');
    expect(first.stdout).toContain('features  FP32  [-1, 30]');

    const retrained = await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v2.onnx'), 'v2');
    const second = await json<ModelVersion>(
      'register', 'bc', retrained,
      '--tag', 'team=oncology', '--tag', 'tier=gold',
      '--metric', 'accuracy=0.979', '--metric', 'f1=0.98',
      '--source', 'pipelines/bc', '--run-id', 'run-7',
      '--training-data', BREAST_CANCER_TRAIN,
    );
    expect(second).toMatchObject({
      version: 2,
      semver: '1.1.0',
      tags: { team: 'oncology', tier: 'gold' },
      lineage: {
        source: 'pipelines/bc',
        runId: 'run-7',
        metrics: { accuracy: 0.979, f1: 0.98 },
        trainingData: { sha256: createHash('sha256').update(await readFile(BREAST_CANCER_TRAIN)).digest('hex') },
      },
    });
    expect((await json<ModelVersion>('register', 'bc', DIGITS, '--semver', '3.0.0')).semver).toBe('3.0.0');

    const list = await cli('list');
    expect(list.stdout.split('\n')[0]).toMatch(/^NAME\s+VERSIONS\s+LATEST\s+PRODUCTION\s+ALIASES\s+UPDATED\s+DESCRIPTION$/);
    expect(list.stdout).toMatch(/^bc\s+3\s+3\s+-\s+-\s/m);
    expect((await json<RegisteredModel[]>('list')).map((m) => m.name)).toEqual(['bc']);

    const versions = await cli('versions', 'bc');
    expect(versions.stdout).toMatch(/^1\s+1\.0\.0\s+None\s+-\s+[0-9a-f]{12}\s/m);
    expect(versions.stdout).toMatch(/^3\s+3\.0\.0\s+None\s/m);
    expect((await json<ModelVersion[]>('versions', 'bc')).map((v) => v.semver)).toEqual(['1.0.0', '1.1.0', '3.0.0']);

    const show = await cli('show', 'bc@2');
    expect(show.stdout).toContain('bc version 2 (1.1.0)');
    expect(show.stdout).toContain('run id:      run-7');
    expect(show.stdout).toContain('metrics:     accuracy=0.979, f1=0.98');
    expect(show.stdout).toContain(`training:    ${BREAST_CANCER_TRAIN}`);
    expect(show.stdout).toContain('label  INT64  [-1]');
    const model = await cli('show', 'bc');
    expect(model.stdout).toContain('latest:      3');
    expect(model.stdout).toContain('VERSION');
  });

  it('moves aliases and stages, with compare-and-set and archiving', async () => {
    await cli('register', 'bc', BREAST_CANCER);
    await cli('register', 'bc', await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v2.onnx'), 'v2'));

    expect((await cli('alias', 'bc', 'champion', '1')).stdout).toBe('bc@champion: - -> 1\n');
    expect((await cli('alias', 'bc', 'champion', '2', '--expect', '1')).stdout).toBe('bc@champion: 1 -> 2\n');
    const conflict = await cli('alias', 'bc', 'champion', '1', '--expect', '1');
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toBe(
      "error: alias 'champion' of model 'bc' points to version 2, the caller expected version 1; nothing was changed\n",
    );
    expect((await json<ModelVersion>('show', 'bc@champion')).version).toBe(2);
    expect((await cli('alias', 'bc', 'challenger', '1', '--expect', 'none')).code).toBe(0);
    expect((await cli('alias', 'bc', 'challenger', '--delete')).stdout).toBe('deleted alias challenger of bc (was version 1)\n');

    expect((await cli('stage', 'bc', '1', 'production')).stdout).toBe('bc version 1: None -> Production\n');
    expect((await cli('stage', 'bc', '2', 'Production', '--archive-existing')).stdout).toBe('bc version 2: None -> Production (archived 1)\n');
    expect((await json<ModelVersion>('show', 'bc@Production')).version).toBe(2);
    expect((await cli('archive', 'bc', '2')).stdout).toBe('bc version 2: Production -> Archived\n');
    expect((await json<ModelVersion[]>('versions', 'bc')).map((v) => v.stage)).toEqual(['Archived', 'Archived']);
  });

  it('stores a profile from a reference CSV and shows it', async () => {
    await cli('register', 'bc', BREAST_CANCER);
    const wrong = await cli('profile', 'bc', '1', BREAST_CANCER_TRAIN);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('exclude the label column');
    const stored = await cli('profile', 'bc', '1', BREAST_CANCER_TRAIN, '--exclude', 'label');
    expect(stored.code).toBe(0);
    expect(stored.stdout).toContain('stored an input profile of 30 features (426 rows) with bc version 1');
    expect(stored.stdout).toMatch(/^0\s+mean_radius\s+[0-9.]+\s/m);
    expect((await cli('show', 'bc@1')).stdout).toContain('profile:     30 features from train.csv (426 rows)');
    const shown = await json<ModelVersion & { profile: InputProfile }>('show', 'bc@latest');
    expect(shown.profile.features).toHaveLength(30);
  });

  it('deletes with guards and keeps an event log', async () => {
    await cli('register', 'bc', BREAST_CANCER);
    await cli('register', 'dg', DIGITS);
    await cli('alias', 'bc', 'champion', '1');
    const refused = await cli('delete', 'bc', '1');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      "error: model 'bc' version 1 holds alias 'champion'; move it to another version first, or delete with force\n",
    );
    expect((await cli('delete', 'bc', '1', '--force')).stdout).toBe('deleted bc version 1\n');
    expect((await cli('delete', 'dg')).stdout).toBe('deleted model dg (versions 1)\n');

    const events = await json<RegistryEvent[]>('events');
    expect(events.map((e) => e.action)).toEqual([
      'model.created',
      'version.registered',
      'model.created',
      'version.registered',
      'alias.set',
      'version.deleted',
      'model.deleted',
    ]);
    const forBc = await cli('events', 'bc');
    expect(forBc.stdout.split('\n')[0]).toMatch(/^ID\s+TIME\s+ACTOR\s+ACTION\s+MODEL\s+VERSION\s+DETAILS$/);
    expect(forBc.stdout).toMatch(/alias\.set\s+bc\s+1\s+\{"alias":"champion","from":null,"to":1\}/);
    expect(forBc.stdout).not.toContain('dg');
    const since = await json<RegistryEvent[]>('events', '--since', String(events[4]!.id));
    expect(since.map((e) => e.action)).toEqual(['version.deleted', 'model.deleted']);
  });

  it('reports failed operations as one line on stderr with status 1', async () => {
    for (const args of [
      ['register', 'a/b', BREAST_CANCER],
      ['register', '..', BREAST_CANCER],
      ['show', 'ghost'],
      ['alias', 'ghost', 'champion', '1'],
      ['register', 'bc', path.join(fx.dir, 'missing.onnx')],
      ['alias', 'bc', 'Production', '1'],
    ]) {
      const result = await cli(...args);
      expect(result.code, args.join(' ')).toBe(1);
      expect(result.stderr, args.join(' ')).toMatch(/^error: [^\n]+\n$/);
    }
    expect((await cli('register', 'a/b', BREAST_CANCER)).stderr).toBe(
      "error: model name 'a/b' may only contain letters, digits, '_', '-' and '.'\n",
    );
    expect((await cli('show', 'ghost')).stderr).toBe("error: model 'ghost' is not found\n");
  });

  it('reports command-line mistakes with status 2', async () => {
    for (const args of [
      ['register', 'bc'],
      ['alias', 'bc', 'champion', 'three'],
      ['alias', 'bc', 'champion'],
      ['stage', 'bc', '1', 'Retired'],
      ['register', 'bc', BREAST_CANCER, '--tag', 'novalue'],
      ['register', 'bc', BREAST_CANCER, '--metric', 'accuracy=high'],
      ['list', '--bogus'],
      ['events', '--since', 'yesterday'],
      ['frobnicate'],
    ]) {
      const result = await cli(...args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/^error: /);
    }
    expect(await json<RegisteredModel[]>('list')).toEqual([]);
  });
});

describe('inferd models registry selection and process exit statuses', () => {
  it('uses INFERD_REGISTRY when --registry is absent', async () => {
    const fx = await sqliteBackend().fixture();
    const saved = process.env['INFERD_REGISTRY'];
    try {
      process.env['INFERD_REGISTRY'] = fx.url;
      expect((await runCli(['register', 'bc', BREAST_CANCER])).code).toBe(0);
      const reg = await fx.open();
      expect((await reg.getModel('bc')).latestVersion).toBe(1);
    } finally {
      if (saved === undefined) delete process.env['INFERD_REGISTRY'];
      else process.env['INFERD_REGISTRY'] = saved;
      await fx.cleanup();
    }
  });

  it('exits 0, 1 and 2 as a real process', async () => {
    const fx = await sqliteBackend().fixture();
    const main = path.join(repoRoot, 'test', 'registry', 'cli-main.ts');
    const inferd = async (...args: string[]) => {
      try {
        const { stdout, stderr } = await execFileAsync(process.execPath, ['--import', 'tsx', main, 'models', ...args, '--registry', fx.url], {
          cwd: repoRoot,
        });
        return { code: 0, stdout, stderr };
      } catch (error) {
        const e = error as { code: number; stdout: string; stderr: string };
        return { code: e.code, stdout: e.stdout, stderr: e.stderr };
      }
    };
    try {
      const [ok, failed, usage] = await Promise.all([
        inferd('register', 'bc', BREAST_CANCER, '--json'),
        inferd('show', 'nothing-here'),
        inferd('stage', 'bc', 'one', 'Production'),
      ]);
      expect(ok.code).toBe(0);
      expect((JSON.parse(ok.stdout) as ModelVersion).version).toBe(1);
      expect(failed).toMatchObject({ code: 1, stderr: "error: model 'nothing-here' is not found\n" });
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain("'one' is not a version number");
    } finally {
      await fx.cleanup();
    }
  });
});
