/**
 * The `security:` block: off by default, clear errors for wrong keys and missing secrets, and
 * a layer assembled from a full configuration whose policies run in the documented order
 * against a real registry database.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { InferdError } from '../../src/core/errors.js';
import { createSecurityLayer, startupWarnings } from '../../src/security/index.js';
import { context, recorder, REQUEST } from './support.js';

describe('security configuration', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-sec-config-'));
    await writeFile(path.join(dir, 'pepper'), randomBytes(32).toString('hex'), { mode: 0o600 });
    await writeFile(path.join(dir, 'audit.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    await writeFile(path.join(dir, 'loose'), randomBytes(32).toString('hex'), { mode: 0o644 });
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function load(yaml: string) {
    const file = path.join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    await writeFile(file, yaml);
    return loadConfig({ file, env: {} });
  }

  it('is off by default', async () => {
    const config = loadConfig({ env: {} });
    expect(config.security.enabled).toBe(false);
    expect(config.security.rate_limit.enabled).toBe(false);
    expect(config.security.audit.enabled).toBe(false);
    expect(config.security.authorization.open_actions).toEqual(['server.live', 'server.ready', 'server.startup', 'server.metrics']);
  });

  it('names unknown keys, wrong permissions and missing secrets', async () => {
    await expect(load('security:\n  enabled: true\n  authentication:\n    api_key: {}\n')).rejects.toThrow(/unknown key 'security.authentication.api_key'/);
    await expect(load('security:\n  authorization:\n    roles:\n      r: { permissions: [fly] }\n')).rejects.toThrow(/security\.authorization\.roles\.r\.permissions\.0/);
    await expect(load('security:\n  enabled: true\n')).rejects.toThrow(/'security.authentication.api_keys.pepper' is required/);
    await expect(load('security:\n  enabled: true\n  authentication:\n    api_keys: { enabled: false }\n')).rejects.toThrow(/every request would be refused/);
    await expect(load('security:\n  audit: { enabled: true }\n')).rejects.toThrow(/'security.audit.signing_key' is required/);
    await expect(load('security:\n  authentication:\n    jwt: { issuer: a, audience: b }\n')).rejects.toThrow(/needs 'jwks_url' or 'public_key_files'/);
    await expect(load('security:\n  authentication:\n    jwt: { issuer: a, audience: b, jwks_url: "http://idp.example.test/jwks" }\n')).rejects.toThrow(/must use https/);
    await expect(load('security:\n  authentication:\n    jwt: { issuer: a, audience: b, jwks_url: x, algorithms: [HS256] }\n')).rejects.toThrow(/algorithms/);
    await expect(load('security:\n  tls: { cert_file: a, key_file: b, client_auth: require }\n')).rejects.toThrow(/client_auth' require needs 'security.tls.ca_file'/);
    await expect(load('security:\n  rate_limit: { enabled: true }\n')).rejects.toThrow(/needs 'security.enabled: true'/);
    await expect(load(`security:\n  enabled: true\n  authentication:\n    anonymous_roles: [ghost]\n    api_keys: { pepper: { file: x } }\n`)).rejects.toThrow(/names role 'ghost'/);
  });

  it('refuses a secret file other users can read, and a short one', async () => {
    const config = await load(`security:\n  enabled: true\n  authentication:\n    api_keys: { pepper: { file: ${path.join(dir, 'loose')} } }\n`);
    await expect(createSecurityLayer(config.security, { registryUrl: `sqlite:${path.join(dir, 'r0.db')}`, logger: silent })).rejects.toThrow(/readable by other users; chmod 600/);
    const short = await load(`security:\n  enabled: true\n  authentication:\n    api_keys: { pepper: { env: PEPPER } }\n`);
    await expect(createSecurityLayer(short.security, { registryUrl: `sqlite:${path.join(dir, 'r0.db')}`, logger: silent, env: { PEPPER: 'short' } })).rejects.toThrow(/at least 32 bytes/);
  });

  it('assembles authentication, rate limit, authorisation and audit in that order, and they work together', async () => {
    const config = await load(
      [
        'security:',
        '  enabled: true',
        '  authentication:',
        `    api_keys: { pepper: { file: ${path.join(dir, 'pepper')} } }`,
        '  authorization:',
        '    roles:',
        '      reader: { permissions: [infer, metadata] }',
        '  rate_limit: { enabled: true, rate_per_second: 1, burst: 2 }',
        `  audit: { enabled: true, signing_key: { file: ${path.join(dir, 'audit.key')} } }`,
        '',
      ].join('\n'),
    );
    const warnings: string[] = [];
    const layer = await createSecurityLayer(config.security, {
      registryUrl: `sqlite:${path.join(dir, 'r1.db')}`,
      logger: { ...silent, warn: (_f, m) => warnings.push(m) },
    });
    try {
      expect(layer.policies.map((p) => p.name)).toEqual(['authentication', 'rate-limit', 'authorization', 'audit']);
      const { key } = await layer.apiKeys!.create({ name: 't', roles: ['reader'] }, 'test');
      // Run a small chain the way the pipeline will: each policy's hook wrapping the next.
      const runInfer = async (headers: Record<string, string>) => {
        const rec = recorder();
        const ctx = context(headers, 'iris');
        const chain = layer.policies.reduceRight<(c: typeof ctx) => Promise<unknown>>(
          (next, policy) => (c) => (policy.infer ? policy.infer(c, REQUEST, (cc) => next(cc) as never) : next(c)),
          (c) => rec.infer(c, REQUEST),
        );
        try {
          await chain(ctx);
          return { ctx, code: 'OK' };
        } catch (error) {
          return { ctx, code: (error as InferdError).code };
        }
      };
      expect((await runInfer({ 'x-api-key': key })).code).toBe('OK');
      expect((await runInfer({})).code).toBe('UNAUTHENTICATED');
      expect((await runInfer({ 'x-api-key': key })).code).toBe('OK');
      const limited = await runInfer({ 'x-api-key': key });
      expect(limited.code).toBe('RESOURCE_EXHAUSTED');
      expect(limited.ctx.responseHeaders?.['retry-after']).toBe('1');
      expect(warnings).toContain('authentication failed');
      await new Promise((r) => setTimeout(r, 50));
      const records = [];
      for await (const r of layer.auditLog!.records()) records.push(r);
      expect(records.map((r) => r.action)).toContain('auth.failure');
      expect((await layer.auditLog!.verify()).ok).toBe(true);
    } finally {
      await layer.close();
    }
  });

  it('warns at start when listening beyond loopback without authentication or without TLS', () => {
    const off = loadConfig({ env: {} }).security;
    expect(startupWarnings(off, '0.0.0.0')[0]).toMatch(/listening on 0\.0\.0\.0 without authentication/);
    expect(startupWarnings(off, '127.0.0.1')).toEqual([]);
    expect(startupWarnings(off, '::1')).toEqual([]);
    expect(startupWarnings({ ...off, enabled: true }, '10.0.0.5')[0]).toMatch(/without TLS/);
  });
});

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };
