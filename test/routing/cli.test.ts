/**
 * `inferd traffic` and `inferd experiment` against a real HTTP server with the traffic admin
 * routes mounted, a SQLite registry for persistence, and the real `inferd` program (in-process).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerExperimentCommand } from '../../src/cli/experiment.js';
import { registerTrafficCommand } from '../../src/cli/traffic.js';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { mountTrafficRoutes } from '../../src/routing/http.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { TrafficStore } from '../../src/routing/store.js';
import { inferdCli } from '../support/cli.js';
import { context, FakePlane, request, seeded } from './fakes.js';

const execFileAsync = promisify(execFile);

let app: FastifyInstance;
let traffic: TrafficService;
let registry: Registry;
let dir: string;
let url: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-traffic-cli-'));
  registry = await openRegistry(`sqlite:${path.join(dir, 'registry.db')}`);
  traffic = await TrafficService.open(new Map(), { store: TrafficStore.fromRegistry(registry), random: seeded(5), refreshIntervalMs: 0 });
  app = Fastify();
  mountTrafficRoutes(app, { traffic, served: { versions: (m) => (m === 'fraud' ? ['1', '2', '3'] : undefined) } }, (h) => String(h['x-actor'] ?? 'admin'));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
});

afterAll(async () => {
  await app?.close();
  await traffic?.close();
  await registry?.close();
  await rm(dir, { recursive: true, force: true });
});

const run = inferdCli(registerTrafficCommand, registerExperimentCommand);
const inferd = (...args: string[]) => run(args);

const server = (...args: string[]) => inferd(...args, '--url', url);

describe('inferd traffic', () => {
  it('sets a split, shows it, adds a shadow that keeps the split, and clears it', async () => {
    const split = await server('traffic', 'split', 'fraud', 'control=1:90', 'treatment=2:10', '--sticky-header', 'x-user-id');
    expect(split.stderr).toBe('');
    expect(split.code).toBe(0);
    expect(split.stdout).toMatch(/model fraud \(revision 1, from stored\)/);
    expect(split.stdout).toMatch(/control\s+1\s+90%/);
    const shadow = await server('traffic', 'shadow', 'fraud', '--version', '3', '--percent', '5', '--nice', '7');
    expect(shadow.code).toBe(0);
    expect(shadow.stdout).toMatch(/treatment\s+2\s+10%/);
    expect(shadow.stdout).toMatch(/shadow: version 3 at 5%/);
    const json = JSON.parse((await server('traffic', 'show', 'fraud', '--json')).stdout) as { revision: number; policy: { split: unknown; shadow: { percent: number } } };
    expect(json).toMatchObject({ revision: 2, policy: { shadow: { percent: 5, nice: 7 } } });
    expect((await server('traffic', 'show')).stdout).toMatch(/fraud\s+control=1:90% treatment=2:10%/);
    expect((await server('traffic', 'shadow', 'fraud', '--off')).stdout).not.toMatch(/shadow:/);
    expect((await server('traffic', 'clear', 'fraud')).stdout).toBe('traffic policy of fraud removed\n');
    expect(await server('traffic', 'show', 'fraud')).toMatchObject({ code: 1, stderr: expect.stringMatching(/404 model 'fraud' has no traffic policy/) });
  });

  it('runs a canary: start, pause, promote, abort', async () => {
    const start = await server('traffic', 'canary', 'start', 'fraud', '--baseline', '1', '--canary', '2', '--steps', '10:30s,50:30s,100', '--interval', '10s', '--max-p99-ms', '300');
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/canary\s+2\s+10%/);
    expect(start.stdout).toMatch(/canary: progressing, step 1, weight 10%/);
    expect(start.stdout).toMatch(/analysis: driven by this replica \(.+:\d+:[0-9a-f]{6}\)/);
    expect((await server('traffic', 'canary', 'pause', 'fraud', '--reason', 'dinner')).stdout).toMatch(/canary: paused.*reason: dinner/);
    expect((await server('traffic', 'canary', 'promote', 'fraud')).stdout).toMatch(/canary: progressing, step 2, weight 50%/);
    expect((await server('traffic', 'canary', 'abort', 'fraud')).stdout).toMatch(/canary: aborted, step 2, weight 0%/);
    const again = await server('traffic', 'canary', 'abort', 'fraud');
    expect(again).toMatchObject({ code: 1, stderr: expect.stringMatching(/is aborted; nothing to abort/) });
  });

  it('switches blue-green and rolls back', async () => {
    expect((await server('traffic', 'blue-green', 'fraud', '--active', '1', '--standby', '2', '--keep-warm', '1m')).stdout).toMatch(/active\s+1\s+100%/);
    const switched = await server('traffic', 'switch', 'fraud');
    expect(switched.stdout).toMatch(/active\s+2\s+100%/);
    expect(switched.stdout).toMatch(/switched from 1, kept warm until/);
    expect((await server('traffic', 'switch', 'fraud', '--rollback')).stdout).toMatch(/active\s+1\s+100%/);
  });

  it('refuses bad input with exit 2 and server refusals with exit 1', async () => {
    expect(await server('traffic', 'split', 'fraud', 'control=1')).toMatchObject({ code: 2, stderr: expect.stringMatching(/not a variant/) });
    expect(await server('traffic', 'split', 'fraud', '1:60', '2:30')).toMatchObject({ code: 1, stderr: expect.stringMatching(/weights sum to 90, not 100/) });
    expect(await server('traffic', 'split', 'fraud', '1:50', '7:50')).toMatchObject({ code: 1, stderr: expect.stringMatching(/has no version 7/) });
    expect(await server('traffic', 'shadow', 'fraud', '--percent', '5')).toMatchObject({ code: 2, stderr: expect.stringMatching(/give --version and --percent/) });
    expect(await server('traffic', 'switch', 'nobody')).toMatchObject({ code: 1, stderr: expect.stringMatching(/model 'nobody' has no traffic policy/) });
    expect(await inferd('traffic', 'show', '--url', 'http://127.0.0.1:1')).toMatchObject({ code: 1, stderr: expect.stringMatching(/cannot reach the server at http:\/\/127\.0\.0\.1:1/) });
  });
});

describe('inferd experiment', () => {
  it('sample-size works offline: 13,914 per group for 3% and +20%', async () => {
    const out = await inferd('experiment', 'sample-size', '--baseline', '0.03', '--mde', '0.2', '--relative');
    expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(out.stdout).toMatch(/^13914 per group \(27828 in total\) to detect 0\.03 -> 0\.036/);
    expect(out.stdout).toMatch(/\n13887 per group \(27774 in total\) in the Cohen's h form/);
    const json = JSON.parse((await inferd('experiment', 'sample-size', '--baseline', '0.03', '--mde', '0.2', '--daily-traffic', '1000', '--json')).stdout) as { per_group: number; minimum_days: number };
    expect(json).toMatchObject({ per_group: 13_914, per_group_cohen_h: 13_887, minimum_days: 28 });
    expect(await inferd('experiment', 'sample-size', '--baseline', '3', '--mde', '0.2')).toMatchObject({ code: 2, stderr: expect.stringMatching(/--baseline must be a number in \(0, 1\)/) });
  });

  it('shows a running experiment fed by routed traffic and feedback over HTTP', async () => {
    await server('traffic', 'split', 'fraud', 'control=1:50', 'treatment=2:50', '--sticky-header', 'x-user-id', '--experiment', 'checkout', '--baseline-rate', '0.1', '--mde', '0.5');
    const plane = new FakePlane({ '1': {}, '2': {} });
    const route = routingPolicy(traffic, plane.now);
    for (let u = 0; u < 200; u++) {
      const ctx = context('fraud', { 'x-user-id': `u${u}` }, `cli-${u}`);
      await route.infer!(ctx, request(), plane.next);
      const response = await fetch(`${url}/v2/models/fraud/feedback`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          request_id: `cli-${u}`,
          outcome: ctx.variant === 'treatment' ? u % 4 === 0 : u % 10 === 0,
          label: ctx.variant === 'treatment' ? ['ok', 'ok', 'late', 'lost'][u % 4] : ['ok', 'late'][u % 2],
        }),
      });
      expect(response.status).toBe(200);
    }
    const report = (await server('experiment', 'show', 'checkout', '--json')).stdout;
    const parsed = JSON.parse(report) as { categorical: { categories: string[]; counts: number[][]; dof: number; correction: string }; requiredSamplePerGroupCohenH: number };
    expect(parsed.categorical).toMatchObject({ categories: ['late', 'lost', 'ok'], dof: 2, correction: 'none' });
    expect(parsed.categorical.counts.flat().reduce((a, b) => a + b, 0)).toBe(200);
    expect(parsed.requiredSamplePerGroupCohenH).toBeGreaterThan(0);
    const cliFeedback = await server('experiment', 'feedback', 'fraud', 'cli-0', '--outcome', 'true');
    expect(cliFeedback).toMatchObject({ code: 0, stdout: expect.stringMatching(/^recorded for cli-0: variant (control|treatment) \(version [12]\)/) });
    expect(await server('experiment', 'feedback', 'fraud', 'cli-0', '--outcome', 'maybe')).toMatchObject({ code: 2 });
    expect(await server('experiment', 'feedback', 'fraud', 'unknown-id', '--outcome', '1')).toMatchObject({ code: 1, stderr: expect.stringMatching(/404 request 'unknown-id' is not known/) });
    const shown = await server('experiment', 'show', 'checkout');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/experiment checkout on model fraud \(binary, control control/);
    expect(shown.stdout).toMatch(/treatment vs control: two_proportion_z/);
    expect(shown.stdout).toMatch(/required sample per group: 686 \(not reached\)/);
    expect(shown.stdout).toMatch(/labels \(2 variants x 3 categories\):/);
    expect(shown.stdout).toMatch(/chi-square \(Pearson, no continuity correction\) [0-9.e+-]+, dof 2, p [0-9.e+-]+/);
    expect(shown.stdout).toMatch(/required sample per group, Cohen's h form: \d+/);
    expect(shown.stdout).toMatch(/decision: keep_running/);
    expect(await server('experiment', 'show', 'nope')).toMatchObject({ code: 1, stderr: expect.stringMatching(/no split policy runs an experiment named 'nope'/) });
  });

  it('analyses a CSV offline', async () => {
    const file = path.join(dir, 'outcomes.csv');
    const rows = ['variant,outcome'];
    for (let i = 0; i < 1000; i++) rows.push(`a,${i % 10 === 0 ? 1 : 0}`, `b,${i % 5 === 0 ? 1 : 0}`);
    await writeFile(file, rows.join('\n'));
    const out = await inferd('experiment', 'analyse', file, '--baseline-rate', '0.1', '--mde', '0.5');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/a\s+a\s+50%\s+1000\s+1000\s+0\.1/);
    expect(out.stdout).toMatch(/decision: winner \(b\)/);
  });

  it('analyses labels in a CSV offline with the chi-square test', async () => {
    const file = path.join(dir, 'labels.csv');
    const rows = ['variant,outcome'];
    for (let i = 0; i < 300; i++) rows.push(`a,${['red', 'green', 'blue'][i % 3]}`, `b,${['red', 'red', 'green', 'blue'][i % 4]}`);
    await writeFile(file, rows.join('\n'));
    const out = await inferd('experiment', 'analyse', file, '--json');
    expect(out.code).toBe(0);
    const r = JSON.parse(out.stdout) as { categorical: { categories: string[]; counts: number[][]; statistic: number; dof: number; pValue: number } };
    expect(r.categorical).toMatchObject({ categories: ['blue', 'green', 'red'], counts: [[100, 100, 100], [75, 75, 150]], dof: 2 });
    // Expected counts 87.5 / 87.5 / 125 in each row: sum of (o - e)^2 / e.
    expect(r.categorical.statistic).toBeCloseTo((2 * 2 * 12.5 ** 2) / 87.5 + (2 * 25 ** 2) / 125, 10);
    expect(r.categorical.pValue).toBeCloseTo(Math.exp(-r.categorical.statistic / 2), 12);
    const text = await inferd('experiment', 'analyse', file);
    expect(text.stdout).toMatch(/labels \(2 variants x 3 categories\):\nVARIANT\s+BLUE\s+GREEN\s+RED\na\s+100\s+100\s+100\nb\s+75\s+75\s+150/);
  });

  it('exits as a real process (sample-size offline)', async () => {
    const main = path.join(process.cwd(), 'test', 'routing', 'cli-main.ts');
    const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', main, 'experiment', 'sample-size', '--baseline', '0.03', '--mde', '0.2', '--relative']);
    expect(stdout).toMatch(/^13914 per group/);
    const failed = await execFileAsync(process.execPath, ['--import', 'tsx', main, 'experiment', 'sample-size', '--baseline', '0.03']).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 2 });
  });
});
