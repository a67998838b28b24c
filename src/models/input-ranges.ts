/**
 * Per-feature value ranges on a served version's input, from an input profile (stored with a
 * registry version, or measured on a reference CSV named in config.yaml). Checked on the request
 * path before a request is queued: `reject` answers 400 naming every feature out of range,
 * `count` lets the request through and reports each feature to a callback (metrics).
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { ConfigError } from '../config/validate.js';
import type { Tensor, TensorMetadata } from '../core/types.js';
import { checkRanges, profileFromCsv, type InputProfile, type RangeMode, type Violation } from '../validation/ranges.js';
import type { ModelConfig } from './config.js';

export type InputRangesConfig = NonNullable<ModelConfig['input_ranges']>;

/** Datatypes whose values can be compared with a profile's numbers (FP16 travels as raw bits). */
const NUMERIC = new Set(['FP32', 'FP64', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Values shown per feature in a rejection, so a huge batch still gives a readable message. */
const SHOWN_PER_FEATURE = 3;

export class RangeGuard {
  readonly input: string;
  readonly mode: 'reject' | 'count';
  readonly bound: RangeMode;

  private constructor(
    readonly profile: InputProfile,
    config: InputRangesConfig,
    input: TensorMetadata,
  ) {
    this.input = input.name;
    this.mode = config.mode;
    this.bound = config.bound;
  }

  /**
   * Binds a profile to one of the version's inputs; throws when it cannot fit (unknown input,
   * several inputs and none named, a row width that differs from the number of features).
   */
  static bind(model: string, profile: InputProfile, config: InputRangesConfig, inputs: readonly TensorMetadata[]): RangeGuard {
    let input: TensorMetadata | undefined;
    if (config.input !== undefined) {
      input = inputs.find((i) => i.name === config.input);
      if (!input) throw new ConfigError(`input_ranges.input '${config.input}' is not an input of model '${model}' (it has ${inputs.map((i) => `'${i.name}'`).join(', ')})`);
    } else if (inputs.length === 1) {
      input = inputs[0]!;
    } else {
      throw new ConfigError(`model '${model}' has ${inputs.length} inputs; name the one the ranges apply to with input_ranges.input`);
    }
    if (!NUMERIC.has(input.datatype)) throw new ConfigError(`input_ranges: input '${input.name}' of model '${model}' is ${input.datatype}, not numeric`);
    const row = input.shape.length <= 1 ? input.shape : input.shape.slice(1);
    if (row.every((d) => d >= 0)) {
      const width = row.reduce((a, b) => a * b, 1);
      if (width !== profile.features.length) {
        throw new ConfigError(
          `input_ranges: input '${input.name}' of model '${model}' has ${width} values per row but the profile has ${profile.features.length} features` +
            (profile.features.length === width + 1 ? ' (exclude the label column)' : ''),
        );
      }
    }
    return new RangeGuard(profile, config, input);
  }

  /** The values out of range in a request's tensor (already checked against the signature). */
  violations(inputs: readonly Tensor[]): Violation[] {
    const tensor = inputs.find((t) => t.name === this.input);
    if (!tensor) return [];
    const data = tensor.data;
    const values = data instanceof Float32Array || data instanceof Float64Array ? data : Float64Array.from(data as ArrayLike<number | bigint>, Number);
    return checkRanges(values, tensor.shape, this.profile, this.bound);
  }

  /** A 400 listing every feature out of range, its allowed range and (some of) the values. */
  rejection(violations: readonly Violation[]): InvalidInputError {
    const byFeature = new Map<number, Violation[]>();
    for (const v of violations) {
      const list = byFeature.get(v.index);
      if (list) list.push(v);
      else byFeature.set(v.index, [v]);
    }
    const parts = [...byFeature.values()].map((list) => {
      const first = list[0]!;
      const shown = list.slice(0, SHOWN_PER_FEATURE).map((v) => `${v.value} (row ${v.row})`);
      const more = list.length > SHOWN_PER_FEATURE ? ` and ${list.length - SHOWN_PER_FEATURE} more` : '';
      return `'${first.feature}' allowed [${first.min}, ${first.max}], got ${shown.join(', ')}${more}`;
    });
    const bound = this.bound === 'minmax' ? 'min..max' : 'p01..p99';
    return new InvalidInputError(
      `input '${this.input}' has values outside the ranges of the reference data (${bound}) in ${byFeature.size} feature${byFeature.size > 1 ? 's' : ''}: ${parts.join('; ')}`,
    );
  }

  /** Out-of-range values per feature name. */
  static countByFeature(violations: readonly Violation[]): Map<string, number> {
    const counts = new Map<string, number>();
    for (const v of violations) counts.set(v.feature, (counts.get(v.feature) ?? 0) + 1);
    return counts;
  }
}

/** Reference profiles measured from CSVs, kept while the file is unchanged. */
const csvProfiles = new Map<string, { key: string; profile: Promise<InputProfile> }>();

/** The profile of a reference CSV named in a config; relative paths start at the model's directory. */
export async function profileFromReference(modelDir: string, config: InputRangesConfig): Promise<InputProfile> {
  const file = isAbsolute(config.reference!) ? config.reference! : resolve(modelDir, config.reference!);
  let key: string;
  try {
    const s = await stat(file);
    key = `${s.size}:${s.mtimeMs}:${config.exclude.join(',')}`;
  } catch (error) {
    throw new InvalidInputError(`input_ranges.reference: cannot read ${file}: ${(error as Error).message}`);
  }
  const cached = csvProfiles.get(file);
  if (cached && cached.key === key) return cached.profile;
  const profile = profileFromCsv(file, { exclude: config.exclude });
  csvProfiles.set(file, { key, profile });
  profile.catch(() => csvProfiles.delete(file));
  return profile;
}
