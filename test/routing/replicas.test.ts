/**
 * A canary on two real server processes sharing one registry database (the same SQLite file,
 * or one PostgreSQL database): one replica holds the controller lease and drives the analysis
 * and the steps, the other follows the stored weights; the leader measures the requests of both
 * (here all traffic goes to the follower, so nothing advances unless the follower's counters
 * reach it); killed, the leader's lease lapses and the other replica finishes the canary.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRegistry } from '../../src/registry/open.js';
import { TrafficStore } from '../../src/routing/store.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { makeRepository, startChild, type ChildServer } from '../support/server.js';

const CONFIG = `runtime: js
max_batch_size: 0
version_policy: { all: true }
inputs: [{ name: x, datatype: FP32, shape: [-1] }]
outputs: [{ name: y, datatype: FP32, shape: [-1] }]
warmup: []
`;
const MODEL = `export function predict({ x }) { return { y: { datatype: 'FP32', shape: x.shape, data: Float32Array.from(x.data, (v) => v * 2) } }; }`;
const LEASE_TTL_MS = 1500;

interface View {
  variants: Array<{ name: string; weight: number }>;
  canary: { phase: string; weight: number };
  controller: { replica: string; leader: boolean };
}

let repo: string;
let tmp: string;
let pg: PostgresServer;

beforeAll(async () => {
  repo = await makeRepository({ scorer: { config: CONFIG, files: { '1/model.mjs': MODEL, '2/model.mjs': MODEL } } });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'inferd-replicas-'));
  pg = await startPostgres();
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await rm(repo, { recursive: true, force: true });
  await rm(tmp, { recursive: true, force: true });
});

async function get<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (r.status !== 200) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
}

async function controllerOf(server: ChildServer): Promise<{ replica: string; leader: boolean }> {
  return (await get<{ controller: { replica: string; leader: boolean } }>(`${server.url}/v2/admin/traffic`)).controller;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const started = Date.now();
  let last: unknown;
  for (;;) {
    const value = await probe().catch((error: unknown) => void (last = error));
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}${last instanceof Error ? ` (last: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const backends = [
  { name: 'sqlite', url: async () => `sqlite:${path.join(tmp, 'shared', 'registry.db')}` },
  { name: 'postgres', url: async () => pg.createDatabase('replicas') },
];

describe.each(backends)('a canary across two replicas on $name', (backend) => {
  it('one leader drives it on the counters of both, the follower follows, a killed leader is replaced', async () => {
    const registryUrl = await backend.url();
    const env = { INFERD_TRAFFIC__LEASE_TTL_MS: String(LEASE_TTL_MS), INFERD_TRAFFIC__REFRESH_INTERVAL_MS: '200' };
    const args = ['--model-repository', repo, '--registry', registryUrl, '--log-level', 'warn'];
    const servers = await Promise.all([startChild(args, env), startChild(args, env)]);
    let load: Promise<void> | undefined;
    let stopLoad = false;
    try {
      // Exactly one leader.
      const [leader, follower] = await until('one leader', 10_000, async () => {
        const c = await Promise.all(servers.map(controllerOf));
        if (c.filter((x) => x.leader).length !== 1) return undefined;
        return c[0]!.leader ? [servers[0]!, servers[1]!] : [servers[1]!, servers[0]!];
      });
      const leaderId = (await controllerOf(leader)).replica;
      const followerId = (await controllerOf(follower)).replica;
      expect(leaderId).not.toBe(followerId);
      const metric = async (server: ChildServer) => /^inferd_traffic_controller_leader (\d)/m.exec(await (await fetch(`${server.url}/metrics`)).text())?.[1];
      expect([await metric(leader), await metric(follower)]).toEqual(['1', '0']);

      // Started through the follower; every request goes to the follower.
      const policy = {
        canary: {
          baseline: 1,
          canary: 2,
          steps: [{ weight: 20, pause: '1s' }, { weight: 50, pause: '1s' }, { weight: 80, pause: '2s' }, { weight: 100 }],
          analysis: { interval: '1s', min_requests: 2, inconclusive_limit: 20, max_error_rate: 0.05 },
        },
      };
      const put = await fetch(`${follower.url}/v2/admin/models/scorer/traffic`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ policy }) });
      expect(put.status).toBe(200);
      const served: Record<string, number> = {};
      load = (async () => {
        let i = 0;
        while (!stopLoad) {
          const r = await fetch(`${follower.url}/v2/models/scorer/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2], data: [i, i + 1] }] }),
          });
          const body = (await r.json()) as { model_version?: string };
          if (r.status === 200) served[body.model_version!] = (served[body.model_version!] ?? 0) + 1;
          i += 1;
          await new Promise((resolve) => setTimeout(resolve, 8));
        }
      })();

      // Both show the steps the leader takes; never two leaders.
      const seen: Array<{ leader: number; follower: number }> = [];

      await until('step 50% on both replicas', 20_000, async () => {
        const [l, f] = await Promise.all([get<View>(`${leader.url}/v2/admin/models/scorer/traffic`), get<View>(`${follower.url}/v2/admin/models/scorer/traffic`)]);
        expect(l.controller.leader && f.controller.leader).toBe(false);
        if (l.canary.phase !== 'progressing') throw new Error(`the canary is ${l.canary.phase}: ${JSON.stringify(l.canary).slice(0, 1500)}`);
        seen.push({ leader: l.canary.weight, follower: f.canary.weight });

        return l.canary.weight >= 50 && f.canary.weight === l.canary.weight ? true : undefined;
      });
      expect(seen.some((s) => s.follower === 20)).toBe(true);

      // The leader dies without a word: its lease must lapse before the other takes over.
      leader.process.kill('SIGKILL');
      await leader.exited;
      await until('the follower to lead', 10_000, async () => ((await controllerOf(follower)).leader ? true : undefined));
      const finished = await until('the canary promoted', 20_000, async () => {
        const f = await get<View>(`${follower.url}/v2/admin/models/scorer/traffic`);
        if (f.canary.phase === 'rolled_back' || f.canary.phase === 'paused') throw new Error(`canary ${f.canary.phase}`);
        return f.canary.phase === 'promoted' ? f : undefined;
      });
      expect(finished.variants.find((v) => v.name === 'canary')!.weight).toBe(100);
      stopLoad = true;
      await load;
      expect(served['2']).toBeGreaterThan(0);

      // The events stored in the shared database: each step taken once, by the replica leading then.
      const registry = await openRegistry(registryUrl, { home: tmp });
      try {
        const events = (await TrafficStore.fromRegistry(registry).events('scorer', 100)).filter((e) =>
          e.action.startsWith('canary.'),
        );
        const steps = events.filter((e) => e.action === 'canary.step' || e.action === 'canary.promoted');
        const weights = steps.map((e) => e.details['weight']);
        expect(new Set(weights).size).toBe(weights.length);
        expect(weights).toContain(100);
        const byLeader = steps.filter((e) => e.details['replica'] === leaderId).map((e) => e.details['weight']);
        const byFollower = steps.filter((e) => e.details['replica'] === followerId).map((e) => e.details['weight']);
        expect(byLeader).toContain(50);
        expect(byFollower).toContain(100);
        expect(events.some((e) => e.action === 'canary.rolled_back' || e.action === 'canary.paused')).toBe(false);
      } finally {
        await registry.close();
      }
    } finally {
      stopLoad = true;
      await load?.catch(() => undefined);
      await Promise.all(servers.map((s) => s.stop()));
    }
  }, 120_000);
});
