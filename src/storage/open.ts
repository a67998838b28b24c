/**
 * Entry points of object storage for the rest of the server: the settings from the `storage`
 * configuration section, the registry's artifact store from `registry_options.artifacts`, and a
 * remote `model_repository` turned into its synced local copy.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { ServerConfig } from '../config/schema.js';
import { ConfigError } from '../config/validate.js';
import { attachRepositorySource } from '../models/repository.js';
import { ArtifactStore, type ArtifactStorage } from '../registry/artifacts.js';
import { isRemote, parseRemote } from './location.js';
import { RemoteRepository, type Progress } from './remote-repository.js';
import { S3ArtifactStore } from './s3-artifacts.js';
import { createS3Client, type S3Options } from './s3-client.js';

export interface StorageSettings {
  cacheDir: string;
  s3: S3Options;
  partSize?: number;
  concurrency?: number;
  logger?: Logger;
  /** `registry_options.artifacts`: a directory or s3://bucket/prefix. */
  artifacts?: string;
  onProgress?: (what: string, done: number, total: number | undefined) => void;
}

function inferdHome(): string {
  const fromEnv = process.env['INFERD_HOME'];
  return fromEnv !== undefined && fromEnv !== '' ? path.resolve(fromEnv) : path.join(os.homedir(), '.inferd');
}

/** Settings without a configuration file: cache under $INFERD_HOME, S3 from the AWS environment. */
export function defaultStorageSettings(): StorageSettings {
  return { cacheDir: path.join(inferdHome(), 'cache'), s3: {} };
}

export function storageSettings(config: Pick<ServerConfig, 'storage' | 'registry_options'>, logger?: Logger): StorageSettings {
  const st = config.storage;
  const s3: S3Options = {
    ...(st.s3.endpoint !== undefined ? { endpoint: st.s3.endpoint } : {}),
    ...(st.s3.region !== undefined ? { region: st.s3.region } : {}),
    ...(st.s3.force_path_style !== undefined ? { forcePathStyle: st.s3.force_path_style } : {}),
    maxAttempts: st.s3.max_attempts,
    connectTimeoutMs: st.s3.connect_timeout_ms,
    requestTimeoutMs: st.s3.request_timeout_ms,
  };
  return {
    cacheDir: path.resolve(st.cache_dir ?? path.join(inferdHome(), 'cache')),
    s3,
    partSize: st.part_size_bytes,
    concurrency: st.concurrency,
    ...(logger ? { logger } : {}),
    ...(config.registry_options.artifacts !== undefined ? { artifacts: config.registry_options.artifacts } : {}),
  };
}

let processDefaults: StorageSettings | undefined;
const clients = new Map<string, S3Client>();

/** Sets what registries opened without explicit artifact settings use (the serving process's config). */
export function configureStorage(settings: StorageSettings | undefined): void {
  processDefaults = settings;
}

export function configuredStorage(): StorageSettings | undefined {
  return processDefaults;
}

/** One client per distinct S3 setting, shared by the repository and the registry. */
export function s3ClientFor(options: S3Options): S3Client {
  const key = JSON.stringify(options);
  let client = clients.get(key);
  if (!client) {
    client = createS3Client(options);
    clients.set(key, client);
  }
  return client;
}

/** The artifact store `spec` names: a directory, or s3://bucket/prefix with a local cache. */
export function openArtifactStorage(spec: string, settings: StorageSettings): ArtifactStorage {
  if (!isRemote(spec)) return new ArtifactStore(path.resolve(spec));
  const location = parseRemote(spec);
  if (location.kind !== 's3') throw new ConfigError(`registry artifacts '${spec}': object storage must be s3://bucket/prefix`);
  return new S3ArtifactStore(location.url, s3ClientFor(settings.s3), {
    cacheDir: path.join(settings.cacheDir, 'artifacts'),
    ...(settings.logger ? { logger: settings.logger } : {}),
    ...(settings.partSize !== undefined ? { partSize: settings.partSize } : {}),
    ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
    ...(settings.onProgress ? { onProgress: settings.onProgress } : {}),
  });
}

export interface PreparedRepository {
  /** The configuration with `model_repository` pointing at the local copy. */
  config: ServerConfig;
  remote: RemoteRepository | undefined;
  /** Detaches the refresh hook. */
  close(): void;
}

/**
 * For a remote `model_repository`: syncs it once into the cache (a store that cannot be reached
 * is a StorageUnavailableError naming it and the cause) and attaches the re-sync a poll runs
 * first. A local repository is returned as it is.
 */
export async function prepareModelRepository(config: ServerConfig, settings: StorageSettings): Promise<PreparedRepository> {
  if (!isRemote(config.model_repository)) return { config, remote: undefined, close: () => undefined };
  const location = parseRemote(config.model_repository);
  const remote = new RemoteRepository(location.kind === 's3' ? location.url : config.model_repository, {
    cacheDir: settings.cacheDir,
    ...(location.kind === 's3' ? { client: s3ClientFor(settings.s3) } : {}),
    ...(settings.logger ? { logger: settings.logger } : {}),
    ...(settings.partSize !== undefined ? { partSize: settings.partSize } : {}),
    ...(settings.concurrency !== undefined ? { concurrency: settings.concurrency } : {}),
    ...(settings.s3.requestTimeoutMs !== undefined ? { requestTimeoutMs: settings.s3.requestTimeoutMs } : {}),
    ...(settings.onProgress ? { onProgress: (p: Progress) => settings.onProgress!(p.path, p.done, p.total) } : {}),
  });
  const report = await remote.sync();
  settings.logger?.info(
    { repository: remote.label, local: remote.localRoot, files: report.files, downloaded: report.downloaded, bytes: report.bytes, refused: report.refused.length, ms: report.ms },
    'model repository mirrored',
  );
  const detach = attachRepositorySource(remote.localRoot, {
    label: remote.label,
    refresh: async () => {
      await remote.sync();
    },
  });
  return { config: { ...config, model_repository: remote.localRoot }, remote, close: detach };
}
