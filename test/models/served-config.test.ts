// The `models:` list and the registry keys of the server configuration: accepted forms, and
// every mistake reported with the entry it is in.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { parseServedModels } from '../../src/models/served.js';
import { InferdServer } from '../../src/server/index.js';

function served(models: unknown[]) {
  return parseServedModels(loadConfig({ env: {}, overrides: { models } }).models);
}

describe('the models list', () => {
  it('reads registry and repository entries from a YAML file, with defaults', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inferd-config-'));
    try {
      const file = join(dir, 'inferd.yaml');
      await writeFile(
        file,
        `registry: postgres://inferd@db:5432/registry
registry_options: { home: /srv/inferd, busy_timeout_ms: 1000 }
models:
  - registry: fraud@champion
    config: { max_batch_size: 32, input_ranges: { mode: count, bound: percentile } }
  - registry: fraud@challenger
    name: fraud_challenger
    load: lazy
  - repository: digits
    load: lazy
`,
      );
      const config = loadConfig({ file, env: {} });
      expect(config.registry).toBe('postgres://inferd@db:5432/registry');
      expect(config.registry_options).toEqual({ home: '/srv/inferd', busy_timeout_ms: 1000, connect_timeout_ms: 5000 });
      const s = parseServedModels(config.models);
      expect(s.registry.map((r) => [r.name, r.model, r.selector, r.load])).toEqual([
        ['fraud', 'fraud', 'champion', 'eager'],
        ['fraud_challenger', 'fraud', 'challenger', 'lazy'],
      ]);
      expect(s.registrySpec('fraud')!.config).toMatchObject({ max_batch_size: 32, instances: 1, input_ranges: { mode: 'count', bound: 'percentile', exclude: [] } });
      expect(s.registrySpec('fraud_challenger')!.config.max_batch_size).toBe(64);
      expect(s.strategy('digits')).toBe('lazy');
      expect(s.strategy('anything_else')).toBe('eager');
      expect(s.servedFrom('fraud').map((r) => r.name)).toEqual(['fraud', 'fraud_challenger']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('normalises references: stage names, versions, latest', () => {
    const s = served([{ registry: 'a@production' }, { registry: 'b@3' }, { registry: 'c' }]);
    expect(s.registry.map((r) => r.selector)).toEqual(['Production', '3', 'latest']);
  });

  it('rejects unknown keys in an entry and in its config, naming them', () => {
    expect(() => loadConfig({ env: {}, overrides: { models: [{ registry: 'a@1', lazy: true }] } })).toThrow(/unknown key 'models.0.lazy'/);
    expect(() => served([{ registry: 'a@1', config: { max_batch: 4 } }])).toThrow(/models\[0\]\.config: unknown key 'max_batch'/);
    expect(() => loadConfig({ env: {}, overrides: { registry_options: { timeout: 1 } } })).toThrow(/unknown key 'registry_options.timeout'/);
  });

  it('reports every malformed entry', () => {
    let message = '';
    try {
      served([
        { registry: 'a@1', repository: 'a' },
        {},
        { repository: 'digits', config: { max_batch_size: 1 } },
        { repository: 'digits', name: 'other' },
        { registry: 'a@1', config: { version_policy: { latest: 2 } } },
        { registry: 'not a name@1' },
        { registry: 'a@' },
        { registry: 'x@1', config: { runtime: 'js' } },
      ]);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain("models[0]: give exactly one of 'registry'");
    expect(message).toContain("models[1]: give exactly one of 'registry'");
    expect(message).toContain("models[2]: an on-disk model is configured by its config.yaml; 'config' applies to registry models only");
    expect(message).toContain("models[3]: an on-disk model is served under its directory name");
    expect(message).toContain("models[4].config: 'version_policy' does not apply to a registry model");
    expect(message).toContain("models[5]: model name 'not a name'");
    expect(message).toContain("models[6]: reference 'a@' has nothing after '@'");
    expect(message).toContain("models[7].config: the registry holds ONNX models");
  });

  it('refuses two entries served under one name', () => {
    expect(() => served([{ registry: 'fraud@champion' }, { registry: 'fraud@challenger' }])).toThrow(
      /models\[1\]: the name 'fraud' is already served by models\[0\]; give one of them another 'name'/,
    );
  });

  it('stops the server before it listens when the list is wrong', async () => {
    const config = loadConfig({ env: {}, overrides: { models: [{ registry: 'a@1', repository: 'a' }], server: { http_port: 0, grpc_port: -1 } } });
    await expect(InferdServer.start(config, pino({ level: 'silent' }))).rejects.toThrow(/models\[0\]: give exactly one/);
  });
});
