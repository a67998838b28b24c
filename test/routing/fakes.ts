/** Test doubles for the rest of the pipeline: a `next` that answers per version. */
import { rng } from '../../src/loadgen/inputs.js';
import { RuntimeError } from '../../src/core/errors.js';
import type { InferenceRequest, InferenceResponse, RequestContext } from '../../src/core/types.js';

export interface FakeVersion {
  /** Share of requests that fail with a runtime error, 0..1. */
  errorRate?: number;
  latencyMs?: number;
  /** Output value (FP32) returned. */
  value?: number;
}

export function request(parameters?: Record<string, string>): InferenceRequest {
  return { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 2], data: new Float32Array([1, 2]) }], ...(parameters ? { parameters } : {}) };
}

export function context(model: string, headers: Record<string, string> = {}, requestId = `r-${Math.random()}`): RequestContext {
  return { requestId, protocol: 'rest', model, header: (name) => headers[name], responseHeaders: {} };
}

/**
 * A `next` standing for the rest of the chain and the model versions. Time is a number the
 * fake advances by each version's latency, read by the routing policy's `now`.
 */
export class FakePlane {
  time = 0;
  calls: Array<{ version: string | undefined; variant: string | undefined }> = [];
  private counters = new Map<string, number>();

  constructor(public versions: Record<string, FakeVersion>) {}

  now = (): number => this.time;

  next = async (ctx: RequestContext, _request: InferenceRequest): Promise<InferenceResponse> => {
    const version = ctx.version ?? 'default';
    this.calls.push({ version: ctx.version, variant: ctx.variant });
    const spec = this.versions[version];
    if (spec === undefined) throw new Error(`fake plane has no version ${version}`);
    this.time += spec.latencyMs ?? 5;
    // Deterministic failures: every 1/errorRate-th call of the version fails.
    const n = (this.counters.get(version) ?? 0) + 1;
    this.counters.set(version, n);
    const rate = spec.errorRate ?? 0;
    if (rate > 0 && Math.floor(n * rate) !== Math.floor((n - 1) * rate)) throw new RuntimeError(`version ${version} failed`);
    return { model_name: ctx.model ?? 'm', model_version: version, outputs: [{ name: 'y', datatype: 'FP32', shape: [1], data: new Float32Array([spec.value ?? 0]) }] };
  };
}

/** A deterministic [0, 1) source (the load generator's seeded one), so random splits are reproducible. */
export const seeded = rng;
