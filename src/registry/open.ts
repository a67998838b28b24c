/**
 * Opening a registry from a URL: `sqlite:<file>` (the default, under $INFERD_HOME) or
 * `postgres://user@host:port/db` for replicas that share one registry.
 */
import os from 'node:os';
import path from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { configuredStorage, defaultStorageSettings, openArtifactStorage } from '../storage/open.js';
import { Registry, type RegistryOptions } from './registry.js';
import { PostgresDriver, type PostgresOptions } from './sql/postgres.js';
import { SqliteDriver, type SqliteOptions } from './sql/sqlite.js';
import { SqlRegistryStore } from './sql/store.js';
import type { RegistryStore } from './types.js';
import { projectVariable } from '../config/environment.js';

/** `$INFERD_HOME`, default `~/.inferd`. */
export function inferdHome(): string {
  const fromEnv = projectVariable('INFERD_HOME');
  return fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.join(os.homedir(), '.inferd');
}

/** `$INFERD_REGISTRY`, else `sqlite:$INFERD_HOME/registry.db`. */
export function defaultRegistryUrl(): string {
  const fromEnv = projectVariable('INFERD_REGISTRY');
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return `sqlite:${path.join(inferdHome(), 'registry.db')}`;
}

export type StoreOptions = SqliteOptions & PostgresOptions;

export interface OpenRegistryOptions extends Partial<RegistryOptions>, StoreOptions {
  /** Where artifacts live: a directory or s3://bucket/prefix (default: the configured storage, else `<home>/artifacts`). */
  artifactsAt?: string;
}

function sqliteFile(url: string): string {
  // sqlite:relative.db, sqlite:/abs/path.db, sqlite:///abs/path.db
  const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  if (rest === '') throw new InvalidInputError(`registry URL '${url}' names no file (sqlite:<file>)`);
  return rest === ':memory:' ? rest : path.resolve(rest);
}

/** Opens the store a URL names and creates or migrates its schema. */
export async function openStore(url: string, options: StoreOptions = {}): Promise<RegistryStore> {
  if (url.startsWith('sqlite:')) return SqlRegistryStore.open(await SqliteDriver.open(sqliteFile(url), options));
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return SqlRegistryStore.open(new PostgresDriver(url, options));
  throw new InvalidInputError(`registry URL '${url}' is neither sqlite:<file> nor postgres://...`);
}

/**
 * Opens a registry. Artifacts live under `<home>/artifacts` where home is `options.home`, else
 * for SQLite the directory of the database file (database and artifacts travel together), else
 * `$INFERD_HOME`. Replicas sharing a PostgreSQL registry must share that directory too, or keep
 * artifacts in object storage (`artifactsAt: s3://bucket/prefix`, see src/storage).
 */
export async function openRegistry(url: string = defaultRegistryUrl(), options: OpenRegistryOptions = {}): Promise<Registry> {
  const store = await openStore(url, options);
  let home = options.home;
  if (home === undefined) {
    home = url.startsWith('sqlite:') && sqliteFile(url) !== ':memory:' ? path.dirname(sqliteFile(url)) : inferdHome();
  }
  const storage = configuredStorage();
  const artifactsAt = options.artifactsAt ?? storage?.artifacts;
  const artifacts = options.artifacts ?? (artifactsAt !== undefined ? openArtifactStorage(artifactsAt, storage ?? defaultStorageSettings()) : undefined);
  return new Registry(store, {
    home,
    ...(artifacts !== undefined ? { artifacts } : {}),
    ...(options.actor !== undefined ? { actor: options.actor } : {}),
    ...(options.isServing !== undefined ? { isServing: options.isServing } : {}),
    ...(options.artifactCipher !== undefined ? { artifactCipher: options.artifactCipher } : {}),
  });
}
