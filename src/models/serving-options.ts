/**
 * The model-config sections that shape how a version is served rather than how it runs:
 * `cache`, `remote`, `resilience` and `ensemble`. Kept apart from config.ts so each stays short.
 *
 *   cache: { ttl_seconds: 300 }                 # answers of this (deterministic) model are cached
 *   remote: { url: http://host:8000, model: name, version: "1", timeout_ms: 5000 }
 *   resilience:
 *     timeout_ms: 2000                          # per attempt
 *     retry: { max_attempts: 2, initial_delay_ms: 50, max_delay_ms: 1000, budget_ratio: 0.2, budget_min_per_second: 1 }
 *     circuit_breaker: { failure_ratio: 0.5, window_ms: 10000, min_requests_per_second: 1, half_open_after_ms: 5000 }
 *     bulkhead: { max_concurrent: 32, max_queue: 64 }
 *     fallback: { model: other, version: "1" }  # or { response: { outputs: [{ name, datatype, shape, data }] } }
 *   ensemble:
 *     steps:
 *       - { model: text_tokenizer, inputs: { text: text }, outputs: { input_ids: ids, attention_mask: mask } }
 *       - { model: text_encoder_tiny, inputs: { input_ids: ids, attention_mask: mask }, outputs: { embeddings: embeddings } }
 */
import Type from 'typebox';
import { ConfigError } from '../config/validate.js';
import { DATATYPES } from '../core/datatypes.js';

export const CacheSection = Type.Optional(
  Type.Object(
    {
      enabled: Type.Boolean({ default: true }),
      /** How long an answer stays valid; 0 = until evicted or cleared. */
      ttl_seconds: Type.Integer({ minimum: 0, default: 300 }),
    },
    { additionalProperties: false },
  ),
);

export const RemoteSection = Type.Optional(
  Type.Object(
    {
      /** The other Open Inference Protocol server: `http(s)://host:port` (REST) or `grpc://host:port`. */
      url: Type.String({ pattern: '^(https?|grpc)://' }),
      /** The model's name there; default this model's name. */
      model: Type.Optional(Type.String({ minLength: 1 })),
      /** A version to pin there; default the remote's own choice. */
      version: Type.Optional(Type.String({ minLength: 1 })),
      /** Bound on one upstream call (the execution timeout also applies). */
      timeout_ms: Type.Integer({ minimum: 1, default: 10_000 }),
      /** Bound on reading the remote's metadata at load. */
      connect_timeout_ms: Type.Integer({ minimum: 1, default: 5000 }),
      /** Extra headers sent upstream (an API key, for instance). */
      headers: Type.Record(Type.String(), Type.String(), { default: {} }),
    },
    { additionalProperties: false },
  ),
);

const StaticTensor = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    datatype: Type.Union(DATATYPES.map((d) => Type.Literal(d))),
    shape: Type.Array(Type.Integer({ minimum: 0 })),
    data: Type.Array(Type.Union([Type.Number(), Type.String(), Type.Boolean()])),
  },
  { additionalProperties: false },
);

export const ResilienceSection = Type.Optional(
  Type.Object(
    {
      timeout_ms: Type.Optional(Type.Integer({ minimum: 1 })),
      retry: Type.Optional(
        Type.Object(
          {
            /** Retries after the first attempt. */
            max_attempts: Type.Integer({ minimum: 1, maximum: 10, default: 2 }),
            initial_delay_ms: Type.Integer({ minimum: 1, default: 50 }),
            max_delay_ms: Type.Integer({ minimum: 1, default: 2000 }),
            /** Retries allowed as a share of requests over the last 10 s (0.2: at most one retry per five requests). */
            budget_ratio: Type.Number({ minimum: 0, maximum: 10, default: 0.2 }),
            /** Retries always allowed per second, so a quiet model can still retry. */
            budget_min_per_second: Type.Number({ minimum: 0, default: 1 }),
          },
          { additionalProperties: false },
        ),
      ),
      circuit_breaker: Type.Optional(
        Type.Object(
          {
            failure_ratio: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.5 }),
            window_ms: Type.Integer({ minimum: 100, default: 10_000 }),
            min_requests_per_second: Type.Number({ minimum: 0, default: 1 }),
            half_open_after_ms: Type.Integer({ minimum: 1, default: 5000 }),
          },
          { additionalProperties: false },
        ),
      ),
      bulkhead: Type.Optional(
        Type.Object(
          {
            max_concurrent: Type.Integer({ minimum: 1 }),
            max_queue: Type.Integer({ minimum: 0, default: 0 }),
          },
          { additionalProperties: false },
        ),
      ),
      fallback: Type.Optional(
        Type.Union([
          Type.Object({ model: Type.String({ minLength: 1 }), version: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false }),
          Type.Object({ response: Type.Object({ outputs: Type.Array(StaticTensor, { minItems: 1 }) }, { additionalProperties: false }) }, { additionalProperties: false }),
        ]),
      ),
    },
    { additionalProperties: false },
  ),
);

export const EnsembleSection = Type.Optional(
  Type.Object(
    {
      steps: Type.Array(
        Type.Object(
          {
            model: Type.String({ minLength: 1 }),
            version: Type.Optional(Type.String({ minLength: 1 })),
            /** The step model's input ← a tensor of the ensemble (a request input or an earlier step's output). */
            inputs: Type.Record(Type.String(), Type.String()),
            /** The step model's output → the name it takes in the ensemble. */
            outputs: Type.Record(Type.String(), Type.String()),
          },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 32 },
      ),
    },
    { additionalProperties: false },
  ),
);

interface ServingOptions {
  name?: string;
  runtime: string;
  inputs?: unknown[];
  outputs?: unknown[];
  remote?: unknown;
  ensemble?: unknown;
  resilience?: { fallback?: { model: string } | { response: { outputs: Array<{ name: string; shape: number[]; data: unknown[] }> } } };
}

/** Checks between sections that the schema cannot express; throws ConfigError naming the key. */
export function checkServingOptions(config: ServingOptions, where: string): void {
  if ((config.runtime === 'remote') !== (config.remote !== undefined)) {
    throw new ConfigError(`${where}: 'runtime: remote' and a 'remote' section go together`);
  }
  if ((config.runtime === 'ensemble') !== (config.ensemble !== undefined)) {
    throw new ConfigError(`${where}: 'runtime: ensemble' and an 'ensemble' section go together`);
  }
  if (config.runtime === 'ensemble' && (config.inputs === undefined || config.outputs === undefined)) {
    throw new ConfigError(`${where}: an ensemble declares its 'inputs' and 'outputs'`);
  }
  const fallback = config.resilience?.fallback;
  if (fallback && 'response' in fallback) {
    for (const o of fallback.response.outputs) {
      const count = o.shape.reduce((a, b) => a * b, 1);
      if (count !== o.data.length) {
        throw new ConfigError(`${where}: resilience.fallback output '${o.name}' has ${o.data.length} values but shape [${o.shape.join(', ')}] holds ${count}`);
      }
    }
  }
}
