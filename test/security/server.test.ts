/**
 * Security through a real server and its doors: API keys over REST and gRPC, roles, open
 * probes, rate limits with their headers through a real Redis, registry events that name the
 * caller, and an audit chain that records what was done.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { readSecret } from '../../src/security/secrets.js';
import { InferdServer } from '../../src/server/index.js';
import { call, connect, type Clients } from '../server/grpc/fixture.js';
import { BC_ROW } from '../models/support.js';
import { EXAMPLES } from '../support/paths.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const ROW = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: BC_ROW }] };
let server: InferdServer;
let url: string;
let clients: Clients;
let redis: RedisServer;
let keys: { client: string; reader: string; deployer: string };

beforeAll(async () => {
  redis = await startRedis();
  const dir = await mkdtemp(join(tmpdir(), 'inferd-secure-'));
  const pepperFile = join(dir, 'pepper');
  const auditFile = join(dir, 'audit-key');
  await writeFile(pepperFile, randomBytes(32).toString('hex'));
  await writeFile(auditFile, randomBytes(32).toString('hex'));
  await chmod(pepperFile, 0o600);
  await chmod(auditFile, 0o600);
  const registry = `sqlite:${join(dir, 'registry.db')}`;
  // Keys are made as `inferd keys create` makes them: the same database and pepper.
  const db = await openSecurityDatabase(registry);
  const store = new ApiKeyStore(db, { pepper: readSecret({ file: pepperFile }, 'pepper') });
  keys = {
    client: (await store.create({ name: 'client', roles: ['client'] }, 'test')).key,
    reader: (await store.create({ name: 'reader', roles: ['reader'] }, 'test')).key,
    deployer: (await store.create({ name: 'deployer', roles: ['deployer'] }, 'test')).key,
  };
  await db.close();
  const config = loadConfig({
    env: {},
    overrides: {
      model_repository: EXAMPLES,
      registry,
      server: { host: '127.0.0.1', http_port: 0, grpc_port: 0 },
      shutdown: { lame_duck_ms: 0 },
      logging: { level: 'silent' },
      security: {
        enabled: true,
        authentication: { api_keys: { pepper: { file: pepperFile } } },
        authorization: {
          roles: {
            client: { permissions: ['infer', 'metadata'] },
            reader: { permissions: ['metadata'] },
            deployer: { permissions: ['metadata', 'models:load', 'registry:write'] },
          },
        },
        rate_limit: { enabled: true, redis_url: redis.url, rate_per_second: 5, burst: 5 },
        audit: { enabled: true, signing_key: { file: auditFile } },
      },
    },
  });
  server = await InferdServer.start(config, pino({ level: 'silent' }));
  url = `http://127.0.0.1:${server.httpPort}`;
  clients = connect(server.grpcPort);
}, 120_000);

afterAll(async () => {
  clients?.close();
  await server?.shutdown(2000);
  await redis?.stop();
});

const post = (path: string, headers: Record<string, string>, body: unknown = ROW) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

function md(entries: Record<string, string>): grpc.Metadata {
  const m = new grpc.Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
}

describe('a server with security on', () => {
  it('refuses inference without credentials on every door, and with a wrong key, saying nothing specific', async () => {
    const none = await post('/v2/models/breast_cancer/infer', {});
    expect(none.status).toBe(401);
    const wrong = await post('/v2/models/breast_cancer/infer', { 'x-api-key': `${keys.client.slice(0, -4)}AAAA` });
    expect(wrong.status).toBe(401);
    expect(await none.json()).toEqual({ error: 'authentication required' });
    expect(await wrong.json()).toEqual({ error: 'invalid credentials' });
    const v1 = await post('/v1/models/breast_cancer:predict', {}, { instances: [BC_ROW] });
    expect(v1.status).toBe(401);
    await expect(call(clients.inference, 'ModelInfer', { model_name: 'breast_cancer', inputs: [] })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    // A malformed body from an unauthenticated caller is refused as unauthenticated, not parsed.
    const garbage = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', body: '{nope' });
    expect(garbage.status).toBe(401);
  });

  it('serves a client key over REST and gRPC, with rate-limit headers', async () => {
    const ok = await post('/v2/models/breast_cancer/infer', { authorization: `ApiKey ${keys.client}` });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('ratelimit-limit')).not.toBeNull();
    const g = await call<{ model_name: string }>(
      clients.inference,
      'ModelInfer',
      { model_name: 'breast_cancer', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], contents: { fp32_contents: BC_ROW } }] },
      { metadata: md({ 'x-api-key': keys.client }) },
    );
    expect(g.response.model_name).toBe('breast_cancer');
  });

  it('keeps probes and metrics open', async () => {
    expect((await fetch(`${url}/health/ready`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
    expect((await fetch(`${url}/v2/models/breast_cancer`)).status).toBe(401);
  });

  it('enforces roles: a reader cannot infer or unload; a deployer can load', async () => {
    expect((await post('/v2/models/breast_cancer/infer', { 'x-api-key': keys.reader })).status).toBe(403);
    expect((await post('/v2/repository/models/digits/unload', { 'x-api-key': keys.reader }, {})).status).toBe(403);
    expect((await post('/v2/repository/models/digits/unload', { 'x-api-key': keys.client }, {})).status).toBe(403);
    expect((await fetch(`${url}/v2/models/digits/ready`, { headers: { 'x-api-key': keys.reader } })).status).toBe(200);
    await expect(
      call(clients.inference, 'RepositoryModelUnload', { model_name: 'digits' }, { metadata: md({ 'x-api-key': keys.reader }) }),
    ).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((await post('/v2/repository/models/digits/load', { 'x-api-key': keys.deployer }, {})).status).toBe(200);
  });

  it('limits the rate per caller: 429 with Retry-After past the burst', async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, () => post('/v2/models/breast_cancer/infer', { 'x-api-key': keys.client })));
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(6);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('records the caller in the audit chain and the chain verifies', async () => {
    const log = server.security!.auditLog!;
    const records = [];
    for await (const r of log.records()) records.push(r);
    expect(records.some((r) => r.action === 'model.load' && r.actor.length > 0 && r.actor !== 'test')).toBe(true);
    expect(records.some((r) => r.action.startsWith('auth'))).toBe(true);
    const verdict = await log.verify();
    expect(verdict.ok).toBe(true);
  });
});
