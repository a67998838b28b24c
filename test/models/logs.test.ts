// What an operator reads in the log when a swap fails or the registry is down: one line each,
// naming the model, the versions, the reason and what keeps serving; passwords hidden.
import { Writable } from 'node:stream';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { InferdServer } from '../../src/server/index.js';
import { freePort } from '../support/server.js';
import { BC_ONNX, BC_SERVING_CONFIG, corrupt, request, retrained, sqliteRegistry } from './support.js';

function capture(): { logger: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      out.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => out.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function start(overrides: Record<string, unknown>, logger: pino.Logger): Promise<{ server: InferdServer; url: string }> {
  const config = loadConfig({
    env: {},
    overrides: { model_repository: await mkdtemp(join(tmpdir(), 'inferd-logs-')), server: { host: '127.0.0.1', http_port: 0, grpc_port: -1 }, ...overrides },
  });
  const server = await InferdServer.start(config, logger);
  return { server, url: `http://127.0.0.1:${server.httpPort}` };
}

it('a failed swap is logged with the versions, the reason and the version that keeps serving', async () => {
  const reg = await sqliteRegistry();
  const { logger, lines } = capture();
  await reg.registry.register('breast_cancer', BC_ONNX);
  const v2 = await reg.registry.register('breast_cancer', await retrained(BC_ONNX, join(reg.home, 'v2.onnx'), 'v2'));
  await reg.registry.setAlias('breast_cancer', 'champion', 1);
  const { server, url } = await start(
    { registry: reg.url, registry_options: { home: reg.home }, models: [{ registry: 'breast_cancer@champion', config: BC_SERVING_CONFIG }] },
    logger,
  );
  try {
    await corrupt(reg.registry, v2.artifact.sha256);
    await reg.registry.setAlias('breast_cancer', 'champion', 2);
    // A corrupted artifact is a failed precondition of the load: 409, as every such refusal.
    expect((await request(url, 'POST', '/v2/repository/models/breast_cancer/load', {})).status).toBe(409);
    const failed = lines().find((l) => l['msg'] === 'model version failed to load; the serving version keeps serving');
    expect(failed).toMatchObject({ level: 50, model: 'breast_cancer', versions: ['2'], serving: ['1'], reason: expect.stringMatching(/corrupted/) });
    const ready = lines().find((l) => l['msg'] === 'model version ready');
    expect(ready).toMatchObject({ model: 'breast_cancer', version: '1' });
  } finally {
    await server.shutdown(5000);
    await reg.cleanup();
  }
});

it('an unreachable registry is logged once, with the password hidden', async () => {
  const { logger, lines } = capture();
  const port = await freePort();
  const { server, url } = await start(
    {
      registry: `postgres://inferd:hunter2@127.0.0.1:${port}/registry`,
      registry_options: { connect_timeout_ms: 500 },
      models: [{ registry: 'fraud@champion', config: BC_SERVING_CONFIG }],
      model_control: { mode: 'poll', poll_interval_ms: 100 },
    },
    logger,
  );
  try {
    // A few polls and admin calls: still one warning for the one outage.
    for (let i = 0; i < 3; i++) expect((await request(url, 'GET', '/v2/admin/registry/models')).status).toBe(503);
    const warnings = lines().filter((l) => l['msg'] === 'model registry unavailable; loaded models keep serving');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 40, registry: `postgres://inferd:***@127.0.0.1:${port}/registry`, reason: expect.stringMatching(/unreachable/) });
    expect(JSON.stringify(lines())).not.toContain('hunter2');
    expect(lines().find((l) => l['msg'] === 'model failed to load')).toMatchObject({ model: 'fraud', reason: expect.stringMatching(/unreachable/) });
  } finally {
    await server.shutdown(5000);
  }
});
