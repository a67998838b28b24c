import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RegistryConflictError } from '../../src/registry/errors.js';
import type { Registry } from '../../src/registry/registry.js';
import type { RegistryEvent } from '../../src/registry/types.js';
import { profileFromCsv } from '../../src/validation/ranges.js';
import { SCHEMA_VERSION } from '../../src/registry/sql/schema.js';
import {
  BACKENDS,
  BREAST_CANCER,
  BREAST_CANCER_TRAIN,
  DIGITS,
  TEXT_ENCODER,
  retrainedCopy,
  type Fixture,
} from './fixtures.js';
import { failure, sha256 } from '../support/http.js';

describe.each(BACKENDS)('registry on $kind', (backend) => {
  let fx: Fixture;
  let registry: Registry;

  beforeAll(() => backend.start());
  afterAll(() => backend.stop());
  beforeEach(async () => {
    fx = await backend.fixture();
    registry = await fx.open();
  });
  afterEach(() => fx.cleanup());

  describe('registration', () => {
    it('registers a version with its signature, hash and a read-only content-addressed copy', async () => {
      const v = await registry.register('breast_cancer', BREAST_CANCER, { description: 'MLP', tags: { team: 'oncology' } });
      const digest = await sha256(BREAST_CANCER);
      expect(v).toMatchObject({
        name: 'breast_cancer',
        version: 1,
        semver: '1.0.0',
        description: 'MLP',
        tags: { team: 'oncology' },
        stage: 'None',
        aliases: [],
        artifact: { sha256: digest, size: (await stat(BREAST_CANCER)).size },
        createdBy: 'tester',
        hasProfile: false,
      });
      expect(v.signature).toEqual({
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
          { name: 'label', datatype: 'INT64', shape: [-1] },
        ],
      });
      const stored = path.join(fx.home, 'artifacts', 'sha256', digest.slice(0, 2), digest, 'model.onnx');
      expect(await sha256(stored)).toBe(digest);
      expect((await stat(stored)).mode & 0o222).toBe(0);
      // No temporary file is left behind.
      expect(await readdir(path.join(fx.home, 'artifacts', 'tmp'))).toEqual([]);
      expect(await registry.getVersion('breast_cancer', 1)).toEqual(v);
    });

    it('reads signatures with several dynamic axes and integer inputs', async () => {
      const v = await registry.register('text_encoder', TEXT_ENCODER);
      expect(v.signature).toEqual({
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
          { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
        ],
        outputs: [{ name: 'embedding', datatype: 'FP32', shape: [-1, 128] }],
      });
    });

    it('records lineage: source, run id, metrics and the training data hash', async () => {
      const v = await registry.register('breast_cancer', BREAST_CANCER, {
        source: 'git@example.org:ml/bc.git#a1b2c3',
        runId: 'run-42',
        metrics: { accuracy: 0.979, f1: 0.98 },
        trainingData: BREAST_CANCER_TRAIN,
      });
      expect(v.lineage).toEqual({
        source: 'git@example.org:ml/bc.git#a1b2c3',
        runId: 'run-42',
        metrics: { accuracy: 0.979, f1: 0.98 },
        trainingData: { path: BREAST_CANCER_TRAIN, sha256: await sha256(BREAST_CANCER_TRAIN), size: (await stat(BREAST_CANCER_TRAIN)).size },
      });
      const err = await failure(registry.register('breast_cancer', DIGITS, { metrics: { accuracy: Number.NaN } }));
      expect(err.code).toBe('INVALID_ARGUMENT');
    });

    it('proposes semantic versions from the signature and keeps labels unique', async () => {
      const retrained = await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'retrained.onnx'), 'retrained on more data');
      const again = await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'again.onnx'), 'third training run');
      expect((await registry.register('m', BREAST_CANCER)).semver).toBe('1.0.0');
      // Same signature, different weights: a compatible change.
      expect((await registry.register('m', retrained)).semver).toBe('1.1.0');
      // A different signature breaks callers.
      expect((await registry.register('m', DIGITS)).semver).toBe('2.0.0');
      const dup = await failure(registry.register('m', again, { semver: '1.1.0' }));
      expect(dup.code).toBe('ALREADY_EXISTS');
      expect(dup.message).toContain('1.1.0');
      const patched = await registry.register('m', again, { semver: '2.0.1' });
      expect(patched).toMatchObject({ version: 4, semver: '2.0.1' });
      const bad = await failure(registry.register('m', TEXT_ENCODER, { semver: 'v3' }));
      expect(bad.code).toBe('INVALID_ARGUMENT');
      // The next proposal starts from the highest label in use; text_encoder differs from v4.
      expect((await registry.register('m', TEXT_ENCODER)).semver).toBe('3.0.0');
    });

    it('refuses a second registration of the same artifact, naming the version that has it', async () => {
      await registry.register('bc', BREAST_CANCER);
      const err = await failure(registry.register('bc', BREAST_CANCER, { description: 'again' }));
      expect(err.code).toBe('ALREADY_EXISTS');
      expect(err.message).toContain("model 'bc' version 1 already has this artifact");
      expect((await registry.listVersions('bc')).map((v) => v.version)).toEqual([1]);
      // Another model may use the same file; the store keeps one copy.
      const other = await registry.register('bc_copy', BREAST_CANCER);
      expect(other.version).toBe(1);
      const shards = await readdir(path.join(fx.home, 'artifacts', 'sha256'));
      expect(shards).toHaveLength(1);
    });

    it('refuses invalid names before writing anything', async () => {
      for (const name of ['a/b', '../etc', '..', '.', '', 'x'.repeat(129), 'with space', 'a\\b', 'name@alias']) {
        const err = await failure(registry.register(name, BREAST_CANCER));
        expect(err.code, name).toBe('INVALID_ARGUMENT');
      }
      expect(await registry.listModels()).toEqual([]);
      await expect(stat(path.join(fx.home, 'artifacts'))).rejects.toThrow();
      expect((await registry.register('ok_name-1.2', BREAST_CANCER)).name).toBe('ok_name-1.2');
      expect((await registry.register('x'.repeat(128), BREAST_CANCER)).version).toBe(1);
    });

    it('refuses a file that is not an ONNX model and leaves nothing behind', async () => {
      const err = await failure(registry.register('bc', BREAST_CANCER_TRAIN));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toContain('not a loadable ONNX model');
      const missing = await failure(registry.register('bc', path.join(fx.dir, 'nope.onnx')));
      expect(missing.code).toBe('INVALID_ARGUMENT');
      expect(await registry.listModels()).toEqual([]);
      expect(await readdir(path.join(fx.home, 'artifacts', 'tmp'))).toEqual([]);
      await expect(stat(path.join(fx.home, 'artifacts', 'sha256'))).rejects.toThrow();
    });

    it('numbers versions without gaps or twins when registrations race', async () => {
      const other = await fx.open();
      const files = await Promise.all(
        [1, 2, 3, 4].map((i) => retrainedCopy(BREAST_CANCER, path.join(fx.dir, `r${i}.onnx`), `run ${i}`)),
      );
      const results = await Promise.all(files.map((file, i) => (i % 2 === 0 ? registry : other).register('raced', file)));
      expect(results.map((r) => r.version).sort()).toEqual([1, 2, 3, 4]);
      expect(new Set(results.map((r) => r.semver)).size).toBe(4);
      expect((await registry.getModel('raced')).versionCount).toBe(4);
    });
  });

  describe('references, aliases and stages', () => {
    beforeEach(async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.register('bc', await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v2.onnx'), 'v2'));
      await registry.register('bc', await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v3.onnx'), 'v3'));
    });

    it('resolves name, name@latest, name@N, name@alias and name@Stage', async () => {
      await registry.setAlias('bc', 'champion', 2);
      await registry.transitionStage('bc', 1, 'Production');
      expect((await registry.resolve('bc')).version).toBe(3);
      expect((await registry.resolve('bc@latest')).version).toBe(3);
      expect((await registry.resolve('bc@1')).version).toBe(1);
      expect((await registry.resolve('bc@champion')).version).toBe(2);
      expect((await registry.resolve('bc@Production')).version).toBe(1);
      expect((await registry.resolve('bc@production')).version).toBe(1);
      expect((await registry.resolve('bc', 'champion')).version).toBe(2);
      const alias = await failure(registry.resolve('bc@challenger'));
      expect(alias.code).toBe('NOT_FOUND');
      expect(alias.message).toContain("no alias 'challenger'");
      expect((await failure(registry.resolve('bc@Staging'))).message).toContain('no version in stage Staging');
      expect((await failure(registry.resolve('bc@9'))).code).toBe('NOT_FOUND');
      expect((await failure(registry.resolve('nope@1'))).message).toContain("model 'nope' is not found");
      expect((await failure(registry.resolve('bc@'))).code).toBe('INVALID_ARGUMENT');
    });

    it('moves aliases and reports where they were', async () => {
      expect(await registry.setAlias('bc', 'champion', 1)).toEqual({ name: 'bc', alias: 'champion', version: 1, previous: null });
      expect(await registry.setAlias('bc', 'champion', 3)).toEqual({ name: 'bc', alias: 'champion', version: 3, previous: 1 });
      await registry.setAlias('bc', 'challenger', 3);
      expect((await registry.getVersion('bc', 3)).aliases).toEqual(['challenger', 'champion']);
      expect((await registry.getModel('bc')).aliases).toEqual({ champion: 3, challenger: 3 });
      expect(await registry.deleteAlias('bc', 'challenger')).toEqual({ name: 'bc', alias: 'challenger', version: null, previous: 3 });
      expect((await failure(registry.deleteAlias('bc', 'challenger'))).code).toBe('NOT_FOUND');
    });

    it('refuses an alias to a missing version and reserved alias names', async () => {
      const before = await registry.lastEventId();
      const err = await failure(registry.setAlias('bc', 'champion', 7));
      expect(err.code).toBe('NOT_FOUND');
      expect(err.message).toContain("version '7'");
      expect((await failure(registry.setAlias('ghost', 'champion', 1))).code).toBe('NOT_FOUND');
      for (const alias of ['Production', 'staging', 'latest', '3', 'a/b', '-x']) {
        expect((await failure(registry.setAlias('bc', alias, 1))).code, alias).toBe('INVALID_ARGUMENT');
      }
      expect(await registry.lastEventId()).toBe(before);
    });

    it('compare-and-set: moves only from the expected version', async () => {
      await registry.setAlias('bc', 'champion', 1, { expected: null });
      const conflict = await failure(registry.setAlias('bc', 'champion', 2, { expected: null }));
      expect(conflict).toBeInstanceOf(RegistryConflictError);
      expect((conflict as RegistryConflictError).current).toBe(1);
      expect(await registry.setAlias('bc', 'champion', 2, { expected: 1 })).toMatchObject({ version: 2, previous: 1 });
      const stale = await failure(registry.setAlias('bc', 'champion', 3, { expected: 1 }));
      expect(stale.code).toBe('FAILED_PRECONDITION');
      expect(stale.message).toContain('points to version 2');
      expect((await registry.resolve('bc@champion')).version).toBe(2);
      const del = await failure(registry.deleteAlias('bc', 'champion', { expected: 3 }));
      expect((del as RegistryConflictError).current).toBe(2);
    });

    it('two racing promotions: exactly one wins, the other learns the current version', async () => {
      await registry.setAlias('bc', 'champion', 1);
      const other = await fx.open({ actor: 'other' });
      for (let round = 0; round < 3; round++) {
        const from = (await registry.resolve('bc@champion')).version;
        const [a, b] = [1, 2, 3].filter((v) => v !== from) as [number, number];
        const results = await Promise.allSettled([
          registry.setAlias('bc', 'champion', a, { expected: from }),
          other.setAlias('bc', 'champion', b, { expected: from }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        const winner = (await registry.resolve('bc@champion')).version;
        expect([a, b]).toContain(winner);
        const error = lost[0]!.reason as RegistryConflictError;
        expect(error).toBeInstanceOf(RegistryConflictError);
        expect(error.current).toBe(winner);
        expect(error.message).toContain(`points to version ${winner}`);
      }
      // One event per successful move, none for the losers.
      const moves = (await registry.events({ model: 'bc' })).filter((e) => e.action === 'alias.set');
      expect(moves).toHaveLength(4);
    });

    it('two racing stage promotions with archiving: one Production version remains', async () => {
      await registry.transitionStage('bc', 1, 'Production');
      const other = await fx.open();
      const results = await Promise.allSettled([
        registry.transitionStage('bc', 2, 'Production', { archiveExistingVersions: true, expected: 1 }),
        other.transitionStage('bc', 3, 'Production', { archiveExistingVersions: true, expected: 1 }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const lost = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
      const winner = (await registry.resolve('bc@Production')).version;
      expect((lost.reason as RegistryConflictError).current).toBe(winner);
      const stages = (await registry.listVersions('bc')).map((v) => v.stage);
      expect(stages.filter((s) => s === 'Production')).toHaveLength(1);
      expect(stages[0]).toBe('Archived');
    });

    it('transitions stages, archiving the previous holders on request', async () => {
      expect(await registry.transitionStage('bc', 1, 'Staging')).toEqual({ name: 'bc', version: 1, stage: 'Staging', previousStage: 'None', archived: [] });
      await registry.transitionStage('bc', 1, 'production');
      await registry.transitionStage('bc', 2, 'Production');
      // Without archiving, both are in Production; name@Production is the highest.
      expect((await registry.resolve('bc@Production')).version).toBe(2);
      const move = await registry.transitionStage('bc', 3, 'Production', { archiveExistingVersions: true });
      expect(move.archived).toEqual([1, 2]);
      expect((await registry.listVersions('bc')).map((v) => v.stage)).toEqual(['Archived', 'Archived', 'Production']);
      expect((await registry.getModel('bc')).productionVersion).toBe(3);
      expect((await registry.archive('bc', 3)).previousStage).toBe('Production');
      expect((await registry.getModel('bc')).productionVersion).toBeNull();
      expect((await failure(registry.transitionStage('bc', 1, 'Retired'))).code).toBe('INVALID_ARGUMENT');
      expect((await failure(registry.transitionStage('bc', 1, 'Archived', { archiveExistingVersions: true }))).code).toBe('INVALID_ARGUMENT');
      expect((await failure(registry.transitionStage('bc', 8, 'Staging'))).code).toBe('NOT_FOUND');
    });
  });

  describe('deletion', () => {
    it('refuses to delete a serving version, and one holding an alias or Production unless forced', async () => {
      const serving = new Set(['bc:1']);
      const guarded = await fx.open({ isServing: (name, version) => serving.has(`${name}:${version}`) });
      await guarded.register('bc', BREAST_CANCER);
      const v2 = await guarded.register('bc', await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v2.onnx'), 'v2'));
      await guarded.register('bc', DIGITS);

      const busy = await failure(guarded.deleteVersion('bc', 1, { force: true }));
      expect(busy.code).toBe('FAILED_PRECONDITION');
      expect(busy.message).toContain("model 'bc' version 1 is serving");

      await guarded.setAlias('bc', 'champion', 2);
      await guarded.transitionStage('bc', 2, 'Production');
      const held = await failure(guarded.deleteVersion('bc', 2));
      expect(held.code).toBe('FAILED_PRECONDITION');
      expect(held.message).toContain("holds alias 'champion' and the Production stage");
      await guarded.deleteVersion('bc', 2, { force: true });
      expect((await failure(guarded.resolve('bc@champion'))).code).toBe('NOT_FOUND');
      expect(await guarded.events({ model: 'bc' })).toContainEqual(
        expect.objectContaining({ action: 'version.deleted', version: 2, details: expect.objectContaining({ aliases: ['champion'], force: true }) }),
      );
      // Its artifact had no other user and is gone; numbers are never reused.
      expect(await guarded.artifacts.exists(v2.artifact.sha256)).toBe(false);
      const v4 = await guarded.register('bc', await retrainedCopy(BREAST_CANCER, path.join(fx.dir, 'v4.onnx'), 'v4'));
      expect(v4.version).toBe(4);

      await guarded.deleteVersion('bc', 3);
      expect((await guarded.listVersions('bc')).map((v) => v.version)).toEqual([1, 4]);
      const model = await failure(guarded.deleteModel('bc'));
      expect(model.message).toContain('serving');
      serving.clear();
      await guarded.deleteModel('bc');
      expect((await failure(guarded.getModel('bc'))).code).toBe('NOT_FOUND');
      expect(await readdir(path.join(fx.home, 'artifacts', 'sha256'), { recursive: true }).then((e) => e.filter((f) => f.endsWith('.onnx')))).toEqual([]);
    });

    it('keeps an artifact that another version still uses', async () => {
      const a = await registry.register('a', BREAST_CANCER);
      await registry.register('b', BREAST_CANCER);
      await registry.deleteModel('a');
      expect((await registry.resolveArtifact('b')).sha256).toBe(a.artifact.sha256);
    });

    it('guards a whole-model deletion like a version deletion', async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.setAlias('bc', 'champion', 1);
      expect((await failure(registry.deleteModel('bc'))).message).toContain("holds alias 'champion'");
      await registry.deleteModel('bc', { force: true });
      expect(await registry.listModels()).toEqual([]);
      expect((await registry.events({ model: 'bc' })).at(-1)).toMatchObject({ action: 'model.deleted', details: { versions: [1], force: true } });
    });
  });

  describe('artifacts', () => {
    it('resolves a verified artifact path', async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.setAlias('bc', 'champion', 1);
      const artifact = await registry.resolveArtifact('bc', 'champion');
      expect(artifact).toMatchObject({ name: 'bc', version: 1, semver: '1.0.0', reference: 'bc@champion', profile: null });
      expect(await sha256(artifact.path)).toBe(artifact.sha256);
      expect(await sha256(artifact.path)).toBe(await sha256(BREAST_CANCER));
    });

    it('refuses a corrupted artifact, and a fresh registration of the same content repairs it', async () => {
      await registry.register('bc', BREAST_CANCER);
      const { path: file } = await registry.resolveArtifact('bc@1');
      await chmod(file, 0o644);
      const bytes = await readFile(file);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
      await writeFile(file, bytes);
      const err = await failure(registry.resolveArtifact('bc@1'));
      expect(err.code).toBe('FAILED_PRECONDITION');
      expect(err.message).toContain("the artifact of model 'bc' version 1 is corrupted");
      expect(err.message).toContain('refusing');

      await registry.register('bc_again', BREAST_CANCER);
      expect((await registry.resolveArtifact('bc@1')).path).toBe(file);
    });

    it('reports a missing artifact clearly', async () => {
      await registry.register('bc', BREAST_CANCER);
      const { path: file } = await registry.resolveArtifact('bc');
      await rm(path.dirname(file), { recursive: true });
      const err = await failure(registry.resolveArtifact('bc'));
      expect(err.code).toBe('FAILED_PRECONDITION');
      expect(err.message).toContain('is missing');
    });
  });

  describe('editing', () => {
    it('edits version descriptions, tags, labels and signatures', async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.register('bc', DIGITS);
      const v = await registry.updateVersion('bc', 1, { description: 'first', tags: { a: '1' }, semver: '1.0.1' });
      expect(v).toMatchObject({ description: 'first', tags: { a: '1' }, semver: '1.0.1' });
      const signature = { ...v.signature, inputs: [{ name: 'features', datatype: 'FP32' as const, shape: [8, 30] }] };
      expect((await registry.updateVersion('bc', 1, { signature })).signature.inputs[0]!.shape).toEqual([8, 30]);
      expect((await failure(registry.updateVersion('bc', 1, { semver: '2.0.0' }))).code).toBe('ALREADY_EXISTS');
      const bad = { inputs: [{ name: 'x', datatype: 'FLOAT', shape: [1] }], outputs: [] };
      expect((await failure(registry.updateVersion('bc', 1, { signature: bad as never }))).code).toBe('INVALID_ARGUMENT');
      const model = await registry.updateModel('bc', { description: 'breast cancer classifier', tags: { owner: 'ml' } });
      expect(model).toMatchObject({ description: 'breast cancer classifier', tags: { owner: 'ml' }, latestVersion: 2, versionCount: 2 });
      const updates = (await registry.events({ model: 'bc' })).filter((e) => e.action.endsWith('.updated'));
      expect(updates.map((e) => e.details['fields'])).toEqual([['semver', 'description', 'tags'], ['signature'], ['description', 'tags']]);
    });
  });

  describe('input profiles', () => {
    it('stores a profile with a version and hands it out with the artifact', async () => {
      await registry.register('bc', BREAST_CANCER);
      const withLabel = await profileFromCsv(BREAST_CANCER_TRAIN);
      const err = await failure(registry.setProfile('bc', 1, withLabel));
      expect(err.message).toContain('31 features');
      expect(err.message).toContain('exclude the label column');
      const profile = await profileFromCsv(BREAST_CANCER_TRAIN, { exclude: ['label'] });
      await registry.setProfile('bc', 1, profile);
      expect(await registry.getProfile('bc', 1)).toEqual(profile);
      expect((await registry.getVersion('bc', 1)).hasProfile).toBe(true);
      expect((await registry.resolveArtifact('bc')).profile).toEqual(profile);
      expect((await failure(registry.setProfile('bc', 2, profile))).code).toBe('NOT_FOUND');
    });
  });

  describe('events', () => {
    it('records who did what, queryable by model and by position', async () => {
      await registry.register('bc', BREAST_CANCER, { source: 'nb', runId: 'r1' });
      await registry.setAlias('bc', 'champion', 1);
      const mark = await registry.lastEventId();
      await registry.register('dg', DIGITS);
      await registry.transitionStage('dg', 1, 'Staging');
      const all = await registry.events();
      expect(all.map((e) => [e.action, e.model, e.version])).toEqual([
        ['model.created', 'bc', null],
        ['version.registered', 'bc', 1],
        ['alias.set', 'bc', 1],
        ['model.created', 'dg', null],
        ['version.registered', 'dg', 1],
        ['stage.transitioned', 'dg', 1],
      ]);
      expect(all.every((e) => e.actor === 'tester')).toBe(true);
      expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
      expect(all[1]!.details).toMatchObject({ semver: '1.0.0', source: 'nb', runId: 'r1', semverProposed: true });
      expect(all[2]!.details).toEqual({ alias: 'champion', from: null, to: 1 });
      expect(all[5]!.details).toEqual({ from: 'None', to: 'Staging', archived: [] });
      expect((await registry.events({ model: 'bc' })).map((e) => e.action)).toEqual(['model.created', 'version.registered', 'alias.set']);
      expect((await registry.changes(mark)).map((e) => e.model)).toEqual(['dg', 'dg', 'dg']);
      expect(await registry.events({ limit: 2 })).toHaveLength(2);
      expect(Date.parse(all[0]!.at)).toBeGreaterThan(Date.now() - 60_000);
    });

    it('watch yields moves made by another client and stops on abort', async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.register('bc', DIGITS);
      const other = await fx.open({ actor: 'deployer' });
      const controller = new AbortController();
      const start = await registry.lastEventId();
      const seen: RegistryEvent[] = [];
      const watching = (async () => {
        for await (const event of registry.watch({ sinceEventId: start, intervalMs: 20, signal: controller.signal })) {
          seen.push(event);
          if (seen.length === 2) controller.abort();
        }
      })();
      await new Promise((r) => setTimeout(r, 60));
      await other.setAlias('bc', 'champion', 1);
      await other.setAlias('bc', 'champion', 2);
      await watching;
      expect(seen.map((e) => [e.action, e.actor, e.details['to']])).toEqual([
        ['alias.set', 'deployer', 1],
        ['alias.set', 'deployer', 2],
      ]);
    });
  });

  describe('schema', () => {
    it('opens an existing registry again without migrating twice', async () => {
      await registry.register('bc', BREAST_CANCER);
      await registry.close();
      const again = await fx.open();
      expect((await again.getModel('bc')).versionCount).toBe(1);
      expect(await again.store.schemaVersion()).toBe(SCHEMA_VERSION);
    });
  });
});
