// Model control modes: explicit (only startup_models at start, the rest by the repository API)
// and poll (the repository directory and the registry are watched), for on-disk and registry
// models alike.
import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startInProcess } from '../support/server.js';
import { BC_ONNX, BC_REQUEST, BC_SERVING_CONFIG, request, retrained, servedVersion, sqliteRegistry, until, type TempRegistry } from './support.js';

const DIGITS_REQUEST = { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 8, 8], data: Array(64).fill(0) }] };

describe('explicit mode', () => {
  let reg: TempRegistry;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    reg = await sqliteRegistry();
    await reg.registry.register('breast_cancer', BC_ONNX);
    await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v2.onnx'), 'retrained 2'));
    await reg.registry.setAlias('breast_cancer', 'champion', 1);
    const repo = await makeRepository({
      breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
      digits: { copyFrom: join(EXAMPLES, 'digits') },
    });
    ({ server, url } = await startInProcess(repo, {
      registry: reg.url,
      registry_options: { home: reg.home },
      models: [{ registry: 'breast_cancer@champion', name: 'bc_champion', config: BC_SERVING_CONFIG }],
      model_control: { mode: 'explicit', startup_models: ['breast_cancer'], poll_interval_ms: 100 },
    }));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
  });

  it('loads only startup_models at start; the others are listed, not loaded', async () => {
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect(index.body).toEqual([
      { name: 'bc_champion', state: 'UNAVAILABLE', reason: 'not loaded' },
      { name: 'breast_cancer', version: '1', state: 'READY' },
      { name: 'digits', state: 'UNAVAILABLE', reason: 'not loaded' },
    ]);
    expect((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status).toBe(404);
  });

  it('loads and unloads by API, on-disk and registry models alike', async () => {
    expect((await request(url, 'POST', '/v2/repository/models/digits/load', {})).status).toBe(200);
    expect((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status).toBe(200);
    expect((await request(url, 'POST', '/v2/repository/models/bc_champion/load', {})).status).toBe(200);
    const r = await request(url, 'POST', '/v2/models/bc_champion/infer', BC_REQUEST);
    expect(r.body).toMatchObject({ model_name: 'bc_champion', model_version: '1' });
    expect((await request(url, 'POST', '/v2/repository/models/breast_cancer/unload', {})).status).toBe(200);
    expect((await request(url, 'POST', '/v2/models/breast_cancer/infer', BC_REQUEST)).status).toBe(503);
    expect((await request(url, 'GET', '/v2/models/breast_cancer/ready')).status).toBe(503);
  });

  it('forgets a load of a name no source has: 404, and readiness and the index are unaffected', async () => {
    expect((await request(url, 'POST', '/v2/repository/models/nope/load', {})).status).toBe(404);
    expect((await request(url, 'POST', '/v2/repository/models/bad..name/load', {})).status).toBe(400);
    expect((await request(url, 'GET', '/health/ready')).status).toBe(200);
    const index = await request(url, 'POST', '/v2/repository/index', {});
    expect((index.body as Array<{ name: string }>).map((e) => e.name)).not.toContain('nope');
  });

  it('does not follow the registry by itself; a load does', async () => {
    await reg.registry.setAlias('breast_cancer', 'champion', 2);
    // Five poll intervals later it still serves version 1: explicit mode has no poller to move it.
    await new Promise((r) => setTimeout(r, 500));
    expect((await request(url, 'POST', '/v2/models/bc_champion/infer', BC_REQUEST)).body.model_version).toBe('1');
    expect((await request(url, 'POST', '/v2/repository/models/bc_champion/load', {})).status).toBe(200);
    expect(await servedVersion(url, 'bc_champion')).toBe('2');
  });
});

describe('poll mode', () => {
  let reg: TempRegistry;
  let repo: string;
  let server: InferdServer;
  let url: string;

  beforeAll(async () => {
    reg = await sqliteRegistry();
    repo = await makeRepository({ breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') } });
    ({ server, url } = await startInProcess(repo, {
      registry: reg.url,
      registry_options: { home: reg.home },
      // Nothing is registered yet: the model fails at start and loads when the alias appears.
      models: [{ registry: 'fraud@champion', config: BC_SERVING_CONFIG }],
      model_control: { mode: 'poll', poll_interval_ms: 100 },
    }));
  });

  afterAll(async () => {
    await server?.shutdown(5000);
    await reg?.cleanup();
  });

  it('loads a model that appears in the repository directory', async () => {
    await cp(join(EXAMPLES, 'digits'), join(repo, 'digits'), { recursive: true });
    await until(async () => ((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status === 200 ? true : undefined), 'digits to load');
  });

  it('swaps to a new version directory and unloads the old one', async () => {
    await mkdir(join(repo, 'breast_cancer', '2'));
    await retrained(BC_ONNX, join(repo, 'breast_cancer', '2', 'model.onnx'), 'version 2 on disk');
    await until(async () => ((await servedVersion(url, 'breast_cancer')) === '2' ? true : undefined), 'version 2 on disk');
    expect(server.manager.serving.versionsOf('breast_cancer').map((v) => v.version)).toEqual(['2']);
  });

  it('reloads a model whose config.yaml changed', async () => {
    const before = server.manager.serving.loadCount('breast_cancer');
    await writeFile(join(repo, 'breast_cancer', 'config.yaml'), 'max_batch_size: 8\n');
    await until(async () => {
      const meta = await request(url, 'GET', '/v2/models/breast_cancer');
      return meta.body.parameters?.max_batch_size === 8 ? true : undefined;
    }, 'the new config');
    expect(server.manager.serving.loadCount('breast_cancer')).toBe(before + 1);
  });

  it('unloads a model removed from the directory', async () => {
    await rm(join(repo, 'digits'), { recursive: true });
    await until(async () => ((await request(url, 'POST', '/v2/models/digits/infer', DIGITS_REQUEST)).status === 404 ? true : undefined), 'digits to go');
  });

  it('loads a registry model once its alias exists, and follows the alias afterwards', async () => {
    const failed = await request(url, 'POST', '/v2/repository/index', {});
    expect(failed.body).toContainEqual({ name: 'fraud', state: 'UNAVAILABLE', reason: "model 'fraud' is not found" });
    await reg.registry.register('fraud', BC_ONNX);
    await reg.registry.setAlias('fraud', 'champion', 1);
    await until(async () => ((await servedVersion(url, 'fraud')) === '1' ? true : undefined), 'fraud@champion to load');
    await reg.registry.register('fraud', await retrained(BC_ONNX, join(reg.home, 'fraud2.onnx'), 'fraud 2'));
    await reg.registry.setAlias('fraud', 'champion', 2);
    await until(async () => ((await servedVersion(url, 'fraud')) === '2' ? true : undefined), 'fraud@champion to move');
    const r = await request(url, 'POST', '/v2/models/fraud/infer', BC_REQUEST);
    expect(r.body).toMatchObject({ model_name: 'fraud', model_version: '2' });
  });

  it('does not retry a broken version on every tick, but retries when it changes', async () => {
    await mkdir(join(repo, 'broken', '1'), { recursive: true });
    await writeFile(join(repo, 'broken', '1', 'model.onnx'), 'not an onnx file');
    const failure = await until(async () => (await request(url, 'GET', '/v2/admin/models/broken')).body.failure, 'the first attempt to fail');
    expect(failure.reason).toMatch(/could not load/);
    expect(server.manager.serving.loadCount('broken')).toBe(1);
    // Many ticks later still one attempt (polls are counted, not timed).
    const bcLoads = server.manager.serving.loadCount('breast_cancer');
    await new Promise((r) => setTimeout(r, 1000));
    expect(server.manager.serving.loadCount('broken')).toBe(1);
    expect(server.manager.serving.loadCount('breast_cancer')).toBe(bcLoads);
    await cp(BC_ONNX, join(repo, 'broken', '1', 'model.onnx'));
    await until(async () => ((await request(url, 'GET', '/v2/models/broken/ready')).status === 200 ? true : undefined), 'the fixed model');
    expect(server.manager.serving.loadCount('broken')).toBe(2);
  });
});
