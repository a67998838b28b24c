/**
 * A model's configuration: `<repository>/<model>/config.yaml`, the single source of truth for how
 * the model is served (Triton's config.pbtxt, in YAML). Every key is optional except where noted;
 * unknown keys are errors.
 *
 *   runtime: onnx                 # or js (a module exporting predict()), remote, ensemble
 *   cache / remote / resilience / ensemble: see serving-options.ts
 *   max_batch_size: 64            # rows per execution; 0 = the model has no batch dimension
 *   version_policy: { latest: 1 } # or { all: true } or { specific: [1, 3] }
 *   instances: 1                  # worker threads, each with its own session
 *   onnx: { intra_op_threads: 1, inter_op_threads: 1, graph_optimization_level: all, execution_providers: [cpu] }
 *   inputs:  [{ name: features, datatype: FP32, shape: [-1, 30] }]   # checked against the file
 *   outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 2] }]
 *   dynamic_batching: { max_queue_delay_microseconds: 500, preferred_batch_size: [16, 32] }
 *   queue: { max_size: 1024, timeout_ms: 0, priority_levels: 1, default_priority: 1 }
 *   ragged_inputs: { input_ids: { pad: 0 }, attention_mask: { pad: 0 } }
 *   warmup: [{ name: default, batch_size: 1, count: 2, inputs: { features: random } }]
 *   input_ranges: { mode: reject, bound: percentile, reference: data/train.csv, exclude: [label] }
 *   execution: { timeout_ms: 30000, unhealthy_after_timeouts: 3, worker_heap_mb: 1024 }
 *   drift: { reference: data/train.csv, exclude: [label], window: { max_rows: 1000 } }   # see src/monitoring/config.ts
 *
 * execution bounds one run of the model: past `timeout_ms` its worker thread is terminated and
 * replaced (the callers of that batch get 504, queued requests run on the fresh worker);
 * `unhealthy_after_timeouts` consecutive timeouts mark the version unhealthy (readiness and the
 * repository index say so) until a run succeeds; `worker_heap_mb` bounds each worker's
 * JavaScript heap, so a runaway JavaScript model fails alone.
 *
 * input_ranges checks each request's values against per-feature ranges of reference data:
 * `reference` is a CSV (relative to the model's directory) profiled when the version loads; a
 * registry model without `reference` uses the profile stored with its version. `mode: reject`
 * answers 400 naming every feature out of range; `count` accepts the request and counts them.
 * `bound: minmax` allows [min, max] of the reference, `percentile` [p01, p99].
 */
import Type, { type Static } from 'typebox';
import { DATATYPES } from '../core/datatypes.js';
import { ConfigError, validate } from '../config/validate.js';
import { DriftConfigSchema } from '../monitoring/config.js';
import { CacheSection, EnsembleSection, RemoteSection, ResilienceSection, checkServingOptions } from './serving-options.js';

const TensorSpec = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    datatype: Type.Union(DATATYPES.map((d) => Type.Literal(d))),
    shape: Type.Array(Type.Integer({ minimum: -1 })),
  },
  { additionalProperties: false },
);

const WarmupInput = Type.Union([Type.Literal('zero'), Type.Literal('random'), Type.Array(Type.Union([Type.Number(), Type.String(), Type.Boolean()]))]);

export const ModelConfigSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1 })),
    runtime: Type.Union([Type.Literal('onnx'), Type.Literal('js'), Type.Literal('remote'), Type.Literal('ensemble')], { default: 'onnx' }),
    /** File name inside each version directory; default model.onnx or model.js / model.mjs. */
    artifact: Type.Optional(Type.String({ minLength: 1 })),
    max_batch_size: Type.Integer({ minimum: 0, default: 64 }),
    version_policy: Type.Union(
      [
        Type.Object({ latest: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
        Type.Object({ all: Type.Literal(true) }, { additionalProperties: false }),
        Type.Object({ specific: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }) }, { additionalProperties: false }),
      ],
      { default: { latest: 1 } },
    ),
    instances: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
    onnx: Type.Object(
      {
        intra_op_threads: Type.Integer({ minimum: 0, default: 1 }),
        inter_op_threads: Type.Integer({ minimum: 0, default: 1 }),
        graph_optimization_level: Type.Union(
          [Type.Literal('disabled'), Type.Literal('basic'), Type.Literal('extended'), Type.Literal('all')],
          { default: 'all' },
        ),
        execution_providers: Type.Array(Type.String(), { default: ['cpu'], minItems: 1 }),
        enable_cpu_mem_arena: Type.Boolean({ default: true }),
        enable_mem_pattern: Type.Boolean({ default: true }),
        /**
         * Whether idle intra-op threads spin waiting for work. Off by default: a server shares its
         * cores with the threads doing I/O, and spinning threads take CPU from them.
         */
        allow_spinning: Type.Boolean({ default: false }),
      },
      { additionalProperties: false, default: {} },
    ),
    inputs: Type.Optional(Type.Array(TensorSpec)),
    outputs: Type.Optional(Type.Array(TensorSpec)),
    dynamic_batching: Type.Optional(
      Type.Object(
        {
          max_queue_delay_microseconds: Type.Integer({ minimum: 0, maximum: 10_000_000, default: 500 }),
          preferred_batch_size: Type.Array(Type.Integer({ minimum: 1 }), { default: [] }),
        },
        { additionalProperties: false },
      ),
    ),
    queue: Type.Object(
      {
        max_size: Type.Integer({ minimum: 1, default: 1024 }),
        timeout_ms: Type.Integer({ minimum: 0, default: 0 }),
        priority_levels: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
        default_priority: Type.Integer({ minimum: 1, default: 1 }),
      },
      { additionalProperties: false, default: {} },
    ),
    ragged_inputs: Type.Record(
      Type.String(),
      Type.Union([
        Type.Object({ pad: Type.Number() }, { additionalProperties: false }),
        Type.Object({ equal_shape: Type.Literal(true) }, { additionalProperties: false }),
      ]),
      { default: {} },
    ),
    warmup: Type.Array(
      Type.Object(
        {
          name: Type.String({ default: 'warmup' }),
          batch_size: Type.Integer({ minimum: 1, default: 1 }),
          count: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }),
          inputs: Type.Record(Type.String(), WarmupInput, { default: {} }),
          dims: Type.Record(Type.String(), Type.Array(Type.Integer({ minimum: 1 })), { default: {} }),
        },
        { additionalProperties: false },
      ),
      { default: [{ name: 'warmup', batch_size: 1, count: 1, inputs: {}, dims: {} }] },
    ),
    input_ranges: Type.Optional(
      Type.Object(
        {
          mode: Type.Union([Type.Literal('reject'), Type.Literal('count')], { default: 'reject' }),
          bound: Type.Union([Type.Literal('minmax'), Type.Literal('percentile')], { default: 'minmax' }),
          /** Reference CSV: header of feature names, one row per example. */
          reference: Type.Optional(Type.String({ minLength: 1 })),
          /** Columns of the reference that are not features (labels, ids). */
          exclude: Type.Array(Type.String(), { default: [] }),
          /** The input the features belong to; needed only when the model has several. */
          input: Type.Optional(Type.String({ minLength: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    execution: Type.Object(
      {
        timeout_ms: Type.Integer({ minimum: 1, default: 30_000 }),
        unhealthy_after_timeouts: Type.Integer({ minimum: 1, default: 3 }),
        worker_heap_mb: Type.Integer({ minimum: 16, default: 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Drift monitoring of served traffic (src/monitoring/config.ts). */
    drift: Type.Optional(DriftConfigSchema),
    /** Serving options: prediction cache, remote model, resilience, ensemble (serving-options.ts). */
    cache: CacheSection,
    remote: RemoteSection,
    resilience: ResilienceSection,
    ensemble: EnsembleSection,
    /** Free-form values handed to js models' load(). */
    parameters: Type.Record(Type.String(), Type.Unknown(), { default: {} }),
  },
  { additionalProperties: false },
);

export type ModelConfig = Static<typeof ModelConfigSchema> & { name: string };

export function parseModelConfig(raw: unknown, name: string, where: string): ModelConfig {
  const config = validate<Static<typeof ModelConfigSchema>>(ModelConfigSchema, raw, where);
  if (config.name !== undefined && config.name !== name) {
    throw new ConfigError(`${where}: 'name' is '${config.name}' but the directory is '${name}'; they must match`);
  }
  if (config.queue.default_priority > config.queue.priority_levels) {
    throw new ConfigError(`${where}: 'queue.default_priority' (${config.queue.default_priority}) is above 'queue.priority_levels' (${config.queue.priority_levels})`);
  }
  checkServingOptions(config, where);
  return { ...config, name };
}
