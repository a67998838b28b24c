// The server configuration: defaults with no file, file values, environment overrides, and
// unknown keys rejected by name. Model configs likewise.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseModelConfig } from '../../src/models/config.js';
import { ModelRepository } from '../../src/models/repository.js';
import { makeRepository } from '../support/server.js';

async function file(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'inferd-config-'));
  const path = join(dir, 'inferd.yaml');
  await writeFile(path, text);
  return path;
}

describe('server configuration', () => {
  it('works with no file at all', () => {
    const c = loadConfig({ env: {} });
    expect(c.server.http_port).toBe(8000);
    expect(c.server.grpc_port).toBe(8001);
    expect(c.server.body_limit_bytes).toBe(16 * 1024 * 1024);
    expect(c.shutdown.deadline_ms).toBe(30_000);
    expect(c.model_control.mode).toBe('none');
    expect(c.metrics.latencyBuckets).toEqual([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  });

  it('reads a file, then environment overrides, then flags', async () => {
    const path = await file('model_repository: /srv/models\nserver:\n  http_port: 9000\n  grpc_port: 9001\nlogging: { level: debug }\n');
    const c = loadConfig({ file: path, env: { INFERD_SERVER__GRPC_PORT: '7001', INFERD_LOGGING__ACCESS_LOG: 'false' }, overrides: { server: { http_port: 1234 } } });
    expect(c.model_repository).toBe('/srv/models');
    expect(c.server.http_port).toBe(1234);
    expect(c.server.grpc_port).toBe(7001);
    expect(c.logging.level).toBe('debug');
    expect(c.logging.access_log).toBe(false);
  });

  it('rejects unknown keys, naming them', async () => {
    const path = await file('server:\n  htp_port: 9000\nmodelz: x\n');
    expect(() => loadConfig({ file: path, env: {} })).toThrow(/unknown key 'server.htp_port'.*unknown key 'modelz'|unknown key 'modelz'.*unknown key 'server.htp_port'/);
  });

  it('rejects an unknown environment variable, naming the variable', () => {
    expect(() => loadConfig({ env: { INFERD_SERVER__PROT: '1' } })).toThrow(/INFERD_SERVER__PROT/);
  });

  it('rejects values of the wrong type, naming the key', async () => {
    const path = await file('server:\n  http_port: eighty\n');
    expect(() => loadConfig({ file: path, env: {} })).toThrow(/server.http_port/);
  });

  it('reports a file that is not YAML', async () => {
    const path = await file('server: [\n');
    expect(() => loadConfig({ file: path, env: {} })).toThrow(/not valid YAML/);
  });
});

describe('model configuration', () => {
  it('fills defaults', () => {
    const c = parseModelConfig({}, 'm', 'm/config.yaml');
    expect(c).toMatchObject({ name: 'm', runtime: 'onnx', max_batch_size: 64, instances: 1, version_policy: { latest: 1 } });
  });

  it('rejects unknown keys and bad values by name', () => {
    expect(() => parseModelConfig({ dynamic_batching: { max_delay: 5 } }, 'm', 'm/config.yaml')).toThrow(/unknown key 'dynamic_batching.max_delay'/);
    expect(() => parseModelConfig({ instances: 0 }, 'm', 'm/config.yaml')).toThrow(/instances/);
    expect(() => parseModelConfig({ name: 'other' }, 'm', 'm/config.yaml')).toThrow(/directory is 'm'/);
  });

  it('applies version policies', async () => {
    const root = await makeRepository({ a: { config: 'version_policy: { latest: 2 }\n' } });
    const { mkdir, writeFile: write } = await import('node:fs/promises');
    for (const v of ['1', '2', '3']) {
      await mkdir(join(root, 'a', v), { recursive: true });
      await write(join(root, 'a', v, 'model.onnx'), 'x');
    }
    const repo = new ModelRepository(root);
    expect((await repo.read('a')).versions.map((v) => v.version)).toEqual(['3', '2']);
    await write(join(root, 'a', 'config.yaml'), 'version_policy: { specific: [1, 3] }\n');
    expect((await repo.read('a')).versions.map((v) => v.version)).toEqual(['3', '1']);
    await write(join(root, 'a', 'config.yaml'), 'version_policy: { all: true }\n');
    expect((await repo.read('a')).versions.map((v) => v.version)).toEqual(['3', '2', '1']);
    await write(join(root, 'a', 'config.yaml'), 'version_policy: { specific: [4] }\n');
    await expect(repo.read('a')).rejects.toThrow(/version\(s\) 4 that do not exist/);
    await expect(repo.read('../etc')).rejects.toThrow(/not a valid model name/);
  });
});
