/**
 * Drift monitoring in a running server: breast_cancer with a `drift:` section, real requests over
 * REST, the drift endpoint, /metrics and a webhook receiver on loopback.
 */
import { readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/monitoring/dataset.js';
import { buildDriftProfile } from '../../src/monitoring/profile.js';
import type { InferdServer } from '../../src/server/index.js';
import { parseCsv, profileFromCsv } from '../../src/validation/ranges.js';
import { BC_ONNX, BC_SERVING_CONFIG, sqliteRegistry } from '../models/support.js';
import { BC_TEST, BC_TRAIN } from '../support/models.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startInProcess } from '../support/server.js';
import { call, connect, type Clients } from '../server/grpc/fixture.js';
import { SHIFTS } from './support.js';

interface Delivery {
  headers: IncomingHttpHeaders;
  body: { event: string; model: string; version: number; decision: { severity: string; driftedColumns: string[] } };
  status: number;
}

/** A webhook receiver that answers 500 to the first attempt of each delivery, 200 afterwards. */
async function startReceiver(): Promise<{ server: Server; url: string; attempts: Delivery[] }> {
  const attempts: Delivery[] = [];
  const seen = new Set<string>();
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const id = String(req.headers['x-inferd-delivery']);
      const status = seen.has(id) ? 200 : 500;
      seen.add(id);
      attempts.push({ headers: req.headers, body: JSON.parse(text), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}/hooks/drift`, attempts };
}

async function rowsOf(file: string, shifts: Record<string, (x: number) => number> = {}): Promise<number[][]> {
  const records = parseCsv(await readFile(file, 'utf8'));
  const header = records[0]!;
  const label = header.indexOf('label');
  return records.slice(1).map((r) => r.map((cell, i) => (shifts[header[i]!] ? shifts[header[i]!]!(Number(cell)) : Number(cell))).filter((_, i) => i !== label));
}

async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('drift monitoring of live traffic (breast_cancer over REST)', () => {
  let server: InferdServer;
  let url: string;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let repository: string;
  let clients: Clients;
  const featureCount = 30;

  beforeAll(async () => {
    receiver = await startReceiver();
    const config = (await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'), 'utf8')) +
      [
        'drift:',
        '  reference: data/train.csv',
        '  exclude: [label]',
        '  window: { max_rows: 143 }',
        '  actions:',
        `    - { webhook: "${receiver.url}", attempts: 3, initial_delay_ms: 50, max_delay_ms: 200 }`,
        '',
      ].join('\n');
    repository = await makeRepository({
      breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer'), config, files: { 'data/train.csv': await readFile(BC_TRAIN, 'utf8') } },
      plain: { copyFrom: join(EXAMPLES, 'breast_cancer') },
    });
    ({ server, url } = await startInProcess(repository, { server: { grpc_port: 0 } }));
    clients = connect(server.grpcPort);
  }, 60_000);

  afterAll(async () => {
    clients?.inference.close();
    await server?.shutdown();
    await new Promise((r) => receiver?.server.close(r));
    if (repository) await rm(repository, { recursive: true, force: true });
  });

  const drift = () => getJson(`${url}/v2/admin/models/breast_cancer/drift`);
  const judged = (n: number) => until(`window ${n}`, drift, (r) => r.body.versions?.[0]?.windows_judged >= n);

  /** One request per row, 16 at a time, over REST or, every other row, gRPC. */
  async function send(rows: number[][], doors: 'rest' | 'rest+grpc' = 'rest'): Promise<void> {
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < rows.length) {
          const index = next++;
          const row = rows[index]!;
          if (doors === 'rest+grpc' && index % 2 === 1) {
            const g = await call<{ outputs: unknown[] }>(clients.inference, 'ModelInfer', {
              model_name: 'breast_cancer',
              inputs: [{ name: 'features', datatype: 'FP32', shape: [1, featureCount], contents: { fp32_contents: row } }],
            });
            expect(g.response.outputs).toHaveLength(2);
            continue;
          }
          const r = await postJson(`${url}/v2/models/breast_cancer/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, featureCount], data: row }] });
          expect(r.status).toBe(200);
        }
      }),
    );
  }

  async function driftedInMetrics(): Promise<{ features: string[]; detected: string | undefined; text: string }> {
    const text = await (await fetch(`${url}/metrics`)).text();
    const features = [...text.matchAll(/^inferd_drift_feature_drifted\{model="breast_cancer",version="1",feature="([^"]+)"\} 1$/gm)].map((m) => m[1]!).sort();
    const detected = /^inferd_drift_detected\{model="breast_cancer",version="1"\} (\S+)$/m.exec(text)?.[1];
    return { features, detected, text };
  }

  it('watches the version with the profile of its reference data', async () => {
    const r = await until('monitoring', drift, (x) => x.body.versions?.[0]?.status === 'watching');
    expect(r.status).toBe(200);
    expect(r.body.versions[0]).toMatchObject({
      version: '1',
      status: 'watching',
      window: { rows_seen: 0, max_rows: 143 },
      windows_judged: 0,
      capture: { input: 'features', sample_rate: 1 },
      last: null,
    });
  });

  it('the test split raises no drift and no webhook', async () => {
    const test = await rowsOf(BC_TEST);
    expect(test).toHaveLength(143);
    await send(test);
    const r = await judged(1);
    const v = r.body.versions[0];
    expect(v.last.rows).toBe(143);
    expect(v.last.dataset).toMatchObject({ drifted: false, drifted_features: [] });
    expect(v.last.decision).toMatchObject({ severity: 'none', action: 'none', enough_data: true });
    expect(v.last.features).toHaveLength(featureCount);
    expect(v.last.features.every((f: { method: string; drifted: boolean; p_value: number }) => f.method === 'ks' && !f.drifted && f.p_value >= 0.05)).toBe(true);
    const m = await driftedInMetrics();
    expect(m.features).toEqual([]);
    expect(m.detected).toBe('0');
    expect(m.text).toMatch(/^inferd_drift_captured_rows_total\{model="breast_cancer",version="1"\} 143$/m);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.attempts).toEqual([]);
  });

  it('a copy with three features shifted (half over gRPC) flags exactly those, in the endpoint and in /metrics, within one window', async () => {
    await send(await rowsOf(BC_TEST, SHIFTS), 'rest+grpc');
    const r = await judged(2);
    const last = r.body.versions[0].last;
    const shifted = Object.keys(SHIFTS).sort();
    expect([...last.dataset.drifted_features].sort()).toEqual(shifted);
    expect(last.features.filter((f: { drifted: boolean }) => f.drifted).map((f: { name: string }) => f.name).sort()).toEqual(shifted);
    for (const f of last.features.filter((x: { drifted: boolean }) => x.drifted)) {
      expect(f).toMatchObject({ method: 'ks', threshold: 0.05 });
      expect(f.p_value).toBeLessThan(0.05);
    }
    expect(last.dataset.drifted).toBe(false); // 3 of 30 is below the 0.5 share
    expect(last.decision.severity).not.toBe('none');
    const m = await driftedInMetrics();
    expect(m.features).toEqual(shifted);
    expect(m.detected).toBe('0');
  });

  it('the webhook gets one delivery for the decision, retried once after the receiver failed', async () => {
    await until('webhook delivery', async () => receiver.attempts.length, (n) => n >= 2, 10_000);
    expect(receiver.attempts.map((a) => a.status)).toEqual([500, 200]);
    const [first, second] = receiver.attempts;
    expect(first!.headers['x-inferd-delivery']).toBe(second!.headers['x-inferd-delivery']);
    expect(second!.body).toMatchObject({ event: 'drift.decision', model: 'breast_cancer', version: 1 });
    expect([...second!.body.decision.driftedColumns].sort()).toEqual(Object.keys(SHIFTS).sort());
    const metrics = await driftedInMetrics();
    expect(metrics.text).toMatch(/^inferd_drift_actions_total\{model="breast_cancer",version="1",action="webhook",result="ok"\} 1$/m);
  });

  it('the same decision in the next window sends nothing more', async () => {
    await send(await rowsOf(BC_TEST, SHIFTS));
    const r = await judged(3);
    expect([...r.body.versions[0].last.dataset.drifted_features].sort()).toEqual(Object.keys(SHIFTS).sort());
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receiver.attempts).toHaveLength(2);
  });

  it('a model without drift monitoring, or an unknown one, is 404', async () => {
    const unknown = await getJson(`${url}/v2/admin/models/nope/drift`);
    expect(unknown.status).toBe(404);
    const plain = await getJson(`${url}/v2/admin/models/plain/drift`);
    expect(plain.status).toBe(404);
    expect(plain.body.error).toContain('no drift monitoring');
    const wrongVersion = await getJson(`${url}/v2/admin/models/breast_cancer/drift?version=7`);
    expect(wrongVersion.status).toBe(404);
    expect(wrongVersion.body.error).toContain('version 7');
  });

  it('unloading the version drops its monitor and its series', async () => {
    const r = await postJson(`${url}/v2/repository/models/breast_cancer/unload`, {});
    expect(r.status).toBe(200);
    await until('series gone', async () => (await fetch(`${url}/metrics`)).text(), (text) => !/^inferd_drift_\w+\{model="breast_cancer"/m.test(text), 5000);
    expect(server.drift!.versionsOf('breast_cancer')).toEqual([]);
  });
});

describe('drift monitoring of a registry version, from the profile stored with it', () => {
  it('uses the stored drift profile, and says why a version without one is not watched', async () => {
    const reg = await sqliteRegistry();
    const shifted = { mean_radius: (x: number) => x * 1.3 + 2 };
    let started: { server: InferdServer; url: string } | undefined;
    try {
      await reg.registry.register('bc', BC_ONNX);
      await reg.registry.register('bare', BC_ONNX);
      const profile = await profileFromCsv(BC_TRAIN, { exclude: ['label'] });
      // the training labels stand for the model's predicted `label` output
      profile.drift = buildDriftProfile(await readTable(BC_TRAIN), { outputs: ['label'] });
      await reg.registry.setProfile('bc', 1, profile);
      const config = { ...BC_SERVING_CONFIG, drift: { window: { max_rows: 143 } } };
      started = await startInProcess(await makeRepository({}), {
        registry: reg.url,
        registry_options: { home: reg.home },
        models: [
          { registry: 'bc@1', config },
          { registry: 'bare@1', config },
        ],
      });
      const { url } = started;
      const watched = await until('bc watched', () => getJson(`${url}/v2/admin/models/bc/drift`), (r) => r.body.versions?.[0]?.status === 'watching');
      expect(watched.body.versions[0].profile).toBe('registry bc@1');
      const bare = await until('bare settled', () => getJson(`${url}/v2/admin/models/bare/drift`), (r) => r.body.versions?.[0]?.status === 'unavailable');
      expect(bare.body.versions[0].reason).toMatch(/no drift profile in the registry: run inferd models profile bare@1/);

      const rows = await rowsOf(BC_TEST, shifted);
      for (let i = 0; i < rows.length; i += 13) {
        // batched requests: 13 rows each
        const batch = rows.slice(i, i + 13);
        const r = await postJson(`${url}/v2/models/bc/infer`, { inputs: [{ name: 'features', datatype: 'FP32', shape: [batch.length, 30], data: batch.flat() }] });
        expect(r.status).toBe(200);
      }
      const judged = await until('bc window', () => getJson(`${url}/v2/admin/models/bc/drift`), (r) => r.body.versions?.[0]?.windows_judged >= 1);
      expect(judged.body.versions[0].last.dataset.drifted_features).toEqual(['mean_radius']);
      const label = judged.body.versions[0].last.features.find((f: { name: string }) => f.name === 'label');
      expect(label).toMatchObject({ role: 'output', method: 'z', missing: 0 });
    } finally {
      await started?.server.shutdown();
      await reg.cleanup();
    }
  }, 60_000);
});
