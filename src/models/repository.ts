/**
 * The model repository on disk, laid out as Triton's:
 *
 *   <repository>/<model>/config.yaml          (optional: defaults apply without it)
 *   <repository>/<model>/<version>/model.onnx  (or model.js / model.mjs for the js runtime)
 *
 * Versions are positive integers; the config's version policy picks which ones are served.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { InvalidInputError, ModelNotFoundError } from '../core/errors.js';
import { ConfigError } from '../config/validate.js';
import { parseModelConfig, type ModelConfig } from './config.js';

export interface VersionArtifact {
  version: string;
  path: string;
}

export interface RepositoryModel {
  name: string;
  config: ModelConfig;
  /** The versions the policy selects, newest first. */
  versions: VersionArtifact[];
}

const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function checkModelName(name: string): string {
  if (!NAME.test(name) || name === '.' || name === '..' || name.includes('..')) {
    throw new InvalidInputError(`'${name}' is not a valid model name: use letters, digits, '_', '-' and '.', no path separators`);
  }
  return name;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Something that refreshes a repository directory from elsewhere (a bucket it mirrors). */
export interface RepositorySource {
  readonly label: string;
  refresh(): Promise<void>;
}

const sources = new Map<string, RepositorySource>();

/** Attaches a source to a local repository directory; ModelRepository.refresh() then runs it. */
export function attachRepositorySource(root: string, source: RepositorySource): () => void {
  const key = resolve(root);
  sources.set(key, source);
  return () => {
    if (sources.get(key) === source) sources.delete(key);
  };
}

export class ModelRepository {
  readonly root: string;
  readonly source: RepositorySource | undefined;

  constructor(root: string, source?: RepositorySource) {
    this.root = resolve(root);
    this.source = source ?? sources.get(this.root);
  }

  /** Brings the directory up to date with its source, if it has one (a poll calls this first). */
  async refresh(): Promise<void> {
    await this.source?.refresh();
  }

  /** Names of the models in the repository (directories that hold a config or a version). */
  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (error) {
      throw new ConfigError(`the model repository '${this.root}' cannot be read: ${(error as Error).message}`);
    }
    const names: string[] = [];
    for (const e of entries) {
      if (!e.isDirectory() || e.name.startsWith('.') || !NAME.test(e.name)) continue;
      const dir = join(this.root, e.name);
      if ((await exists(join(dir, 'config.yaml'))) || (await this.versionDirs(dir)).length > 0) names.push(e.name);
    }
    return names.sort();
  }

  private async versionDirs(dir: string): Promise<number[]> {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    return entries.filter((e) => e.isDirectory() && /^[1-9]\d*$/.test(e.name)).map((e) => Number(e.name));
  }

  async read(name: string): Promise<RepositoryModel> {
    checkModelName(name);
    const dir = join(this.root, name);
    if (!(await isDirectory(dir))) throw new ModelNotFoundError(name);
    const configPath = join(dir, 'config.yaml');
    let raw: unknown = {};
    if (await exists(configPath)) {
      try {
        raw = YAML.parse(await readFile(configPath, 'utf8')) ?? {};
      } catch (error) {
        throw new ConfigError(`${configPath}: not valid YAML: ${(error as Error).message}`);
      }
    }
    const config = parseModelConfig(raw, name, configPath);
    const available = (await this.versionDirs(dir)).sort((a, b) => b - a);
    let chosen: number[];
    const policy = config.version_policy;
    if ('all' in policy) chosen = available;
    else if ('specific' in policy) {
      const missing = policy.specific.filter((v) => !available.includes(v));
      if (missing.length > 0) throw new ConfigError(`${configPath}: version_policy names version(s) ${missing.join(', ')} that do not exist in ${dir}`);
      chosen = [...policy.specific].sort((a, b) => b - a);
    } else chosen = available.slice(0, policy.latest);
    if (chosen.length === 0) throw new ConfigError(`model '${name}' has no version directory (expected ${dir}/1/...)`);

    const versions: VersionArtifact[] = [];
    for (const v of chosen) {
      const vdir = join(dir, String(v));
      if (config.runtime === 'remote' || config.runtime === 'ensemble') {
        // Nothing to load from disk: the version directory itself identifies the version.
        versions.push({ version: String(v), path: vdir });
        continue;
      }
      const candidates = config.artifact ? [config.artifact] : config.runtime === 'onnx' ? ['model.onnx'] : ['model.js', 'model.mjs', 'model.ts'];
      let path: string | undefined;
      for (const c of candidates) {
        if (await exists(join(vdir, c))) {
          path = join(vdir, c);
          break;
        }
      }
      if (!path) throw new ConfigError(`model '${name}' version ${v}: no ${candidates.join(' or ')} in ${vdir}`);
      versions.push({ version: String(v), path });
    }
    return { name, config, versions };
  }
}
