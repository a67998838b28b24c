/**
 * Loads the server configuration: defaults ← file (YAML or JSON) ← environment ← command line.
 *
 * Environment overrides are `INFERD_<KEY>` with `__` between levels and keys in upper case:
 * `INFERD_MODEL_REPOSITORY=/models`, `INFERD_SERVER__HTTP_PORT=9000`, `INFERD_LOGGING__LEVEL=debug`.
 * Values are read as YAML scalars, so numbers and booleans keep their types.
 */
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { isProjectVariable } from './environment.js';
import { ConfigError, validate } from './validate.js';
import { checkSecurityConfig } from '../security/config.js';
import { ConfigValidationError, validateMetricsConfig, validateSloConfig } from '../observability/config.js';
import { ServerConfigSchema, type RawServerConfig, type ServerConfig } from './schema.js';

type Tree = Record<string, unknown>;


function setPath(target: Tree, path: string[], value: unknown): void {
  let node = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)) out[k] = merge(b as Tree, v as Tree);
    else out[k] = v;
  }
  return out;
}

export function environmentOverrides(env: NodeJS.ProcessEnv): Tree {
  const tree: Tree = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('INFERD_') || raw === undefined || isProjectVariable(name)) continue;
    const path = name.slice('INFERD_'.length).toLowerCase().split('__');
    let value: unknown = raw;
    try {
      value = YAML.parse(raw);
    } catch {
      value = raw;
    }
    setPath(tree, path, value ?? raw);
  }
  return tree;
}

export interface LoadOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Highest precedence: values from command-line flags. */
  overrides?: Tree;
}

export function loadConfig(options: LoadOptions = {}): ServerConfig {
  const env = options.env ?? process.env;
  let fromFile: Tree = {};
  const file = options.file ?? (env['INFERD_CONFIG'] || undefined);
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read the configuration file '${file}': ${(error as Error).message}`);
    }
    try {
      fromFile = (YAML.parse(text) as Tree | null) ?? {};
    } catch (error) {
      throw new ConfigError(`${file}: not valid YAML or JSON: ${(error as Error).message}`);
    }
    if (typeof fromFile !== 'object' || Array.isArray(fromFile)) throw new ConfigError(`${file}: the configuration must be a mapping of keys`);
  }
  const fromEnv = environmentOverrides(env);
  try {
    validate(ServerConfigSchema, merge(merge({}, fromEnv), {}), 'environment (INFERD_* variables)');
  } catch (error) {
    // Re-word key paths as variable names so the user knows which variable to fix.
    throw new ConfigError((error as Error).message.replace(/'([a-z0-9_.]+)'/g, (_m, key: string) => `'INFERD_${key.toUpperCase().replace(/\./g, '__')}'`));
  }
  const merged = merge(merge(fromFile, fromEnv), options.overrides ?? {});
  const where = file ?? 'configuration';
  const raw = validate<RawServerConfig>(ServerConfigSchema, merged, where);
  checkSecurityConfig(raw.security, where);
  try {
    const metrics = validateMetricsConfig(camelKeys(raw.metrics));
    const slo = validateSloConfig(camelKeys(raw.slo), metrics.latencyBuckets);
    return { ...raw, metrics, slo };
  } catch (error) {
    if (!(error instanceof ConfigValidationError)) throw error;
    throw new ConfigError(`${where}: ${error.issues.map(snakeText).join('; ')}`);
  }
}

/** The file speaks snake_case throughout; the observability validators take camelCase. */
function camelKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())] = camelKeys(v);
  return out;
}

function snakeText(text: string): string {
  return text.replace(/\b([a-z]+(?:[A-Z][a-z0-9]*)+)\b/g, (word) => word.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
}
