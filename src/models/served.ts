/**
 * The `models:` list of the server configuration: which registry references to serve, under
 * which name and with which serving configuration, and how each model loads.
 *
 *   models:
 *     - registry: breast_cancer@champion    # or @Production, @3, @latest
 *       load: eager                         # eager (default) or lazy
 *       config:                             # the keys of a config.yaml
 *         max_batch_size: 64
 *         dynamic_batching: { max_queue_delay_microseconds: 200 }
 *         input_ranges: { mode: reject, bound: percentile }
 *     - registry: breast_cancer@challenger
 *       name: breast_cancer_challenger      # two references to one model need two names
 *     - repository: digits                  # an on-disk model: only `load` applies
 *       load: lazy
 *
 * A registry model's serving configuration comes from its entry, not from the registry: the
 * registry records what a version is, the server decides how to run it on its hardware, so one
 * version can be served with different batching by different fleets. `version_policy` and
 * `artifact` do not apply (the reference picks one version, the registry holds its file).
 */
import type { ServerConfig } from '../config/schema.js';
import { ConfigError } from '../config/validate.js';
import { parseReference, formatSelector } from '../registry/names.js';
import { parseModelConfig, type ModelConfig } from './config.js';
import { checkModelName } from './repository.js';

export type LoadStrategy = 'eager' | 'lazy';

export interface RegistryModelSpec {
  /** The name clients use. */
  name: string;
  /** As written: `breast_cancer@champion`. */
  reference: string;
  /** The registered model. */
  model: string;
  /** The part after '@', normalised (`latest`, `3`, `Production`, `champion`). */
  selector: string;
  config: ModelConfig;
  load: LoadStrategy;
}

export class ServedModels {
  private readonly byName = new Map<string, RegistryModelSpec>();

  constructor(
    readonly registry: readonly RegistryModelSpec[] = [],
    /** Load strategies of on-disk models named in the list; the others load eagerly. */
    private readonly repository: ReadonlyMap<string, LoadStrategy> = new Map(),
  ) {
    for (const spec of registry) this.byName.set(spec.name, spec);
  }

  registrySpec(name: string): RegistryModelSpec | undefined {
    return this.byName.get(name);
  }

  /** Served names backed by a registered model. */
  servedFrom(model: string): RegistryModelSpec[] {
    return this.registry.filter((s) => s.model === model);
  }

  strategy(name: string): LoadStrategy {
    return this.byName.get(name)?.load ?? this.repository.get(name) ?? 'eager';
  }

  get hasRegistryModels(): boolean {
    return this.registry.length > 0;
  }
}

/** Validates the `models:` entries; every problem names its entry. */
export function parseServedModels(entries: ServerConfig['models']): ServedModels {
  const registry: RegistryModelSpec[] = [];
  const repository = new Map<string, LoadStrategy>();
  const names = new Map<string, string>();
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    const where = `models[${i}]`;
    try {
      if ((entry.registry === undefined) === (entry.repository === undefined)) {
        throw new ConfigError(`${where}: give exactly one of 'registry' (a reference such as name@champion) or 'repository' (an on-disk model name)`);
      }
      let name: string;
      if (entry.repository !== undefined) {
        if (entry.config !== undefined) throw new ConfigError(`${where}: an on-disk model is configured by its config.yaml; 'config' applies to registry models only`);
        if (entry.name !== undefined && entry.name !== entry.repository) throw new ConfigError(`${where}: an on-disk model is served under its directory name; 'name' applies to registry models only`);
        name = checkModelName(entry.repository);
        repository.set(name, entry.load);
      } else {
        const ref = parseReference(entry.registry!);
        name = checkModelName(entry.name ?? ref.name);
        const raw = entry.config ?? {};
        for (const key of ['version_policy', 'artifact', 'name'] as const) {
          if (key in raw) throw new ConfigError(`${where}.config: '${key}' does not apply to a registry model (the reference picks the version and the registry holds its file)`);
        }
        const config = parseModelConfig(raw, name, `${where}.config`);
        if (config.runtime !== 'onnx') throw new ConfigError(`${where}.config: the registry holds ONNX models; 'runtime' must be onnx`);
        registry.push({ name, reference: entry.registry!, model: ref.name, selector: formatSelector(ref.selector), config, load: entry.load });
      }
      const previous = names.get(name);
      if (previous !== undefined) throw new ConfigError(`${where}: the name '${name}' is already served by ${previous}; give one of them another 'name'`);
      names.set(name, where);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      problems.push(message.startsWith(where) ? message : `${where}: ${message}`);
    }
  });
  if (problems.length > 0) throw new ConfigError(`configuration: ${problems.join('; ')}`);
  return new ServedModels(registry, repository);
}
