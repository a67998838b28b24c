/**
 * The security policies alone, in one process, with nothing else on the request path: the
 * layer the server builds from its configuration (API-key authentication with a verified key,
 * the shared rate limit leasing from a throwaway redis-server, role authorisation) composed
 * around a terminal that answers at once. Each figure is the best of many batches of 64
 * concurrent requests (the fastest batch is the one no other process interrupted), per request,
 * minus the same batches through no policy at all.
 *
 *   npx tsx bench/security/policies.ts [--batches 60]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { validate } from '../../src/config/validate.js';
import type { InferenceRequest, InferenceResponse } from '../../src/core/types.js';
import { composeInfer } from '../../src/pipeline/chain.js';
import { recordReader } from '../../src/pipeline/context.js';
import type { PipelineContext, Policy } from '../../src/pipeline/types.js';
import { SecurityConfigSchema, type SecurityConfig } from '../../src/security/config.js';
import { createSecurityLayer } from '../../src/security/index.js';
import { securityBench } from './fixture.js';

const { values } = parseArgs({ options: { batches: { type: 'string', default: '60' } } });
const BATCHES = Number(values.batches);
const CONCURRENCY = 64;
const REPEAT = 20; // batches timed back to back per sample, so one sample is ~1,000 requests

const bench = await securityBench('inferd-policies');
const { pepperFile, registry, key } = bench;

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const REQUEST: InferenceRequest = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 30], data: new Float32Array(30) }] };
const RESPONSE: InferenceResponse = { model_name: 'breast_cancer', outputs: [] } as unknown as InferenceResponse;
const answered = Promise.resolve(RESPONSE);
const terminal = (): Promise<InferenceResponse> => answered;

function security(rateLimit: boolean): SecurityConfig {
  return validate<SecurityConfig>(
    SecurityConfigSchema,
    {
      enabled: true,
      authentication: { api_keys: { pepper: { file: pepperFile } } },
      authorization: { roles: { client: { permissions: ['infer', 'metadata'] } } },
      ...(rateLimit ? { rate_limit: { enabled: true, redis_url: bench.redis.url, rate_per_second: 1_000_000, burst: 1_000_000 } } : {}),
    },
    'security',
  );
}

/** A context like the REST door's: Node's header record behind the reader. */
function context(): PipelineContext {
  const headers = { host: '127.0.0.1', 'content-type': 'application/json', 'x-api-key': key, 'content-length': '400' };
  return { requestId: 'r', requestIdKey: 'x-request-id', protocol: 'rest', door: 'rest.v2', header: recordReader(headers), responseHeaders: {}, model: 'breast_cancer' } as PipelineContext;
}

async function bestMicros(run: (ctx: PipelineContext, req: InferenceRequest) => Promise<InferenceResponse>): Promise<number> {
  const batch = () => {
    const all: Array<Promise<InferenceResponse>> = [];
    for (let i = 0; i < CONCURRENCY; i++) all.push(run(context(), REQUEST));
    return Promise.all(all);
  };
  for (let i = 0; i < 200; i++) await batch();
  let best = Infinity;
  for (let b = 0; b < BATCHES; b++) {
    const start = process.hrtime.bigint();
    for (let r = 0; r < REPEAT; r++) await batch();
    best = Math.min(best, Number(process.hrtime.bigint() - start) / (REPEAT * CONCURRENCY) / 1000);
  }
  return best;
}

const cases: Array<{ name: string; policies: (layers: { plain: Policy[]; limited: Policy[] }) => Policy[] }> = [
  { name: 'authentication + authorisation', policies: (l) => l.plain },
  { name: 'authentication + shared rate limit + authorisation', policies: (l) => l.limited },
];

const loadBefore = loadavg()[0]!.toFixed(2);
const plain = await createSecurityLayer(security(false), { registryUrl: registry, logger: quiet });
const limited = await createSecurityLayer(security(true), { registryUrl: registry, logger: quiet });
try {
  if (!(await limited.limiter!.ready())) throw new Error('redis-server did not answer');
  const none = await bestMicros(composeInfer([], terminal));
  const rows: Record<string, number> = { 'no policy (baseline)': Math.round(none * 1000) / 1000 };
  for (const c of cases) {
    const us = await bestMicros(composeInfer(c.policies({ plain: plain.policies, limited: limited.policies }), terminal));
    rows[c.name] = Math.round((us - none) * 1000) / 1000;
  }
  console.log(JSON.stringify({ unit: 'µs per request over the baseline, best batch', batches: BATCHES, concurrency: CONCURRENCY, perRequest: rows, loadAverage: { before: loadBefore, after: loadavg()[0]!.toFixed(2) } }, null, 2));
} finally {
  await plain.close();
  await limited.close();
  bench.stop();
}
