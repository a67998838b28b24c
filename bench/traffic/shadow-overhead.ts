/**
 * What a 100% shadow costs the callers: breast_cancer version 1 serves, a copy of it as version 2
 * receives every request as a shadow. Requests arrive at a fixed rate (open loop, as real
 * traffic does; a closed loop at saturation would measure capacity, which a shadow that doubles
 * the compute must halve) and go through the routing policy into the real data plane (worker
 * threads, batcher). The same load runs with the shadow off and on, alternating, and the
 * callers' p50/p99 are compared within the run.
 *
 *   npx tsx bench/traffic/shadow-overhead.ts [--seconds 4] [--rate 500] [--rounds 2]
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { InferenceRequest, RequestContext } from '../../src/core/types.js';
import { parseTrafficConfig } from '../../src/routing/config.js';
import { runOnPlane } from '../../src/routing/plane.js';
import { routingPolicy } from '../../src/routing/policy.js';
import { TrafficService } from '../../src/routing/service.js';
import { InferdServer } from '../../src/server/index.js';
import { makeRepository } from '../../test/support/server.js';
import { EXAMPLES } from '../../test/support/paths.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '4' }, rate: { type: 'string', default: '500' }, rounds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const rounds = Number(values.rounds);

const repo = await makeRepository({ breast_cancer: { copyFrom: path.join(EXAMPLES, 'breast_cancer') } });
await mkdir(path.join(repo, 'breast_cancer', '2'), { recursive: true });
await copyFile(path.join(repo, 'breast_cancer', '1', 'model.onnx'), path.join(repo, 'breast_cancer', '2', 'model.onnx'));
const { readFile, writeFile } = await import('node:fs/promises');
const configFile = path.join(repo, 'breast_cancer', 'config.yaml');
await writeFile(configFile, `${await readFile(configFile, 'utf8')}\nversion_policy: { all: true }\n`);

const config = loadConfig({ env: {}, overrides: { model_repository: repo, server: { host: '127.0.0.1', http_port: 0, grpc_port: -1 }, logging: { level: 'silent' } } });
const server = await InferdServer.start(config, pino({ level: 'silent' }));
const next = runOnPlane(server.plane);

const row = new Float32Array(30).map((_, i) => (i % 7) / 7);
const request = (): InferenceRequest => ({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: row.slice() }] });

async function measure(shadowPercent: number): Promise<{ p50: number; p99: number; n: number; mirrored: number; dropped: number }> {
  const traffic = await TrafficService.open(
    new Map([['breast_cancer', parseTrafficConfig({ split: { variants: [{ version: 1, weight: 100 }] }, ...(shadowPercent > 0 ? { shadow: { version: 2, percent: shadowPercent } } : {}) }, 'breast_cancer')]]),
    { runOnVersion: next },
  );
  const policy = routingPolicy(traffic);
  const latencies: number[] = [];
  const pending: Array<Promise<void>> = [];
  const start = performance.now();
  const total = Math.round(rate * seconds);
  let sent = 0;
  // Every 2 ms, send the requests the schedule says are due: a fixed arrival rate.
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
    for (; sent < due; sent++) {
      const ctx: RequestContext = { requestId: `b${sent}`, protocol: 'internal', model: 'breast_cancer', responseHeaders: {} };
      const t = performance.now();
      pending.push(policy.infer!(ctx, request(), next).then(() => void latencies.push(performance.now() - t)));
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(pending);
  const stats = traffic.view('breast_cancer')!.shadow;
  await traffic.close();
  await server.plane.whenIdle();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]!;
  return { p50: q(50), p99: q(99), n: latencies.length, mirrored: stats?.mirrored ?? 0, dropped: stats?.dropped ?? 0 };
}

await measure(0); // warm-up
const rows: string[] = [];
for (let r = 0; r < rounds; r++) {
  const off = await measure(0);
  const on = await measure(100);
  rows.push(
    `| ${r + 1} | ${off.n} | ${off.p50.toFixed(2)} / ${off.p99.toFixed(2)} | ${on.n} | ${on.p50.toFixed(2)} / ${on.p99.toFixed(2)} | ${on.mirrored} / ${on.dropped} | ${(on.p99 / off.p99).toFixed(2)} |`,
  );
}
console.log(`shadow overhead: breast_cancer, ${rate} requests/s for ${seconds} s per measurement\n`);
console.log('| round | requests off | p50 / p99 ms off | requests on | p50 / p99 ms on | mirrored / dropped | p99 on / off |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
await server.shutdown(10_000);
await rm(repo, { recursive: true, force: true });
