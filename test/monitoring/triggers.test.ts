import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readTable } from '../../src/monitoring/dataset.js';
import { computeDrift, type DriftReport } from '../../src/monitoring/drift.js';
import { buildDriftProfile } from '../../src/monitoring/profile.js';
import { DriftTrigger, sendWebhook, type DriftEvent } from '../../src/monitoring/triggers.js';
import { BC_TEST, BC_TRAIN, shiftedTestCopy, tempDir } from './support.js';

interface Delivery {
  headers: IncomingMessage['headers'];
  body: string;
  answered: number;
}

/** A webhook receiver on loopback that answers the first `failures` requests with 503. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  failures = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const status = this.failures > 0 ? 503 : 204;
        if (this.failures > 0) this.failures--;
        this.deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), answered: status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hooks/drift`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }
}

function verify(secret: string, header: string, body: string): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'));
}

describe('drift triggers', () => {
  const receiver = new Receiver();
  let dir: string;
  let stable: DriftReport;
  let drifted: DriftReport;

  beforeAll(async () => {
    await receiver.start();
    dir = await tempDir();
    const profile = buildDriftProfile(await readTable(BC_TRAIN), { outputs: ['label'] });
    stable = computeDrift(profile, await readTable(BC_TEST));
    drifted = computeDrift(profile, await readTable(await shiftedTestCopy(dir)));
  });
  afterAll(async () => {
    await receiver.stop();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    receiver.deliveries.length = 0;
    receiver.failures = 0;
  });

  it('retries a failing receiver with backoff and signs every attempt', async () => {
    receiver.failures = 2;
    const trigger = new DriftTrigger({ model: 'bc', version: 1, actions: [{ kind: 'webhook', url: receiver.url, secret: 's3cret', initialDelayMs: 50, maxDelayMs: 200 }] });
    const outcomes = await trigger.consider(drifted);
    expect(outcomes).toEqual([{ action: 'webhook', target: receiver.url, ok: true, attempts: 3 }]);
    expect(receiver.deliveries.map((d) => d.answered)).toEqual([503, 503, 204]);
    const ids = new Set(receiver.deliveries.map((d) => d.headers['x-inferd-delivery']));
    expect(ids.size).toBe(1);
    for (const d of receiver.deliveries) {
      expect(d.headers['x-inferd-event']).toBe('drift.decision');
      expect(verify('s3cret', String(d.headers['x-inferd-signature']), d.body)).toBe(true);
      expect(verify('other', String(d.headers['x-inferd-signature']), d.body)).toBe(false);
    }
    const event = JSON.parse(receiver.deliveries[2]!.body) as DriftEvent;
    expect(event).toMatchObject({ event: 'drift.decision', model: 'bc', version: 1, decision: { severity: 'severe', action: 'emergency' } });
    expect(event.decision.driftedColumns).toEqual(['mean_radius', 'mean_smoothness', 'worst_texture']);
  });

  it('fires once per decision, not once per window or request', async () => {
    const trigger = new DriftTrigger({ actions: [{ kind: 'webhook', url: receiver.url, initialDelayMs: 10 }] });
    expect(await trigger.consider(stable)).toBeUndefined();
    for (let i = 0; i < 5; i++) await trigger.consider(drifted);
    expect(receiver.deliveries).toHaveLength(1);
    await trigger.consider(stable);
    await trigger.consider(drifted);
    expect(receiver.deliveries).toHaveLength(2);
  });

  it('gives up on a refusal (4xx) and after the last attempt', async () => {
    const refusing = createServer((_req, res) => res.writeHead(403).end());
    await new Promise<void>((resolve) => refusing.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(refusing.address() as AddressInfo).port}/`;
    const event = { event: 'drift.decision' } as DriftEvent;
    const refused = await sendWebhook({ kind: 'webhook', url, initialDelayMs: 10 }, event);
    expect(refused).toMatchObject({ ok: false, attempts: 1 });
    expect(refused.error).toMatch(/answered 403/);
    await new Promise<void>((resolve) => refusing.close(() => resolve()));
    receiver.failures = 10;
    const exhausted = await sendWebhook({ kind: 'webhook', url: receiver.url, attempts: 3, initialDelayMs: 10, maxDelayMs: 20 }, event);
    expect(exhausted).toMatchObject({ ok: false, attempts: 3 });
    expect(receiver.deliveries).toHaveLength(3);
  });

  it('runs a shell command with the event on stdin and the decision in the environment', async () => {
    const out = path.join(dir, 'event.json');
    const env = path.join(dir, 'env.txt');
    const trigger = new DriftTrigger({
      model: 'bc',
      version: 1,
      actions: [{ kind: 'command', command: `cat > '${out}'; printf '%s %s %s' "$INFERD_DRIFT_MODEL" "$INFERD_DRIFT_SEVERITY" "$INFERD_DRIFT_COLUMNS" > '${env}'` }],
    });
    expect(await trigger.consider(drifted)).toEqual([expect.objectContaining({ action: 'command', ok: true })]);
    expect(JSON.parse(await readFile(out, 'utf8'))).toMatchObject({ model: 'bc', decision: { action: 'emergency' } });
    expect(await readFile(env, 'utf8')).toBe('bc severe mean_radius,mean_smoothness,worst_texture');
    const failing = new DriftTrigger({ actions: [{ kind: 'command', command: 'echo broken >&2; exit 4' }] });
    expect(await failing.consider(drifted)).toEqual([expect.objectContaining({ ok: false, error: 'exit status 4: broken' })]);
  });
});
