/**
 * The registry's artifact store in object storage: `s3://bucket/prefix` holds
 * `<prefix>sha256/<ab>/<hash>/model.onnx`, so replicas on different machines share one store.
 * Registering hashes the file into the local cache, then uploads it once (an object already
 * there under its hash is not sent again; multipart for large files). Loading uses the cached
 * copy when it still hashes right, else downloads into the cache (ranged parts for large
 * objects, temporary file then rename) and refuses bytes that do not hash to the registered
 * SHA-256.
 */
import { DeleteObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import { InferdError, InvalidInputError, UnavailableError } from '../core/errors.js';
import { ARTIFACT_FILE, ArtifactStore, sha256File, type ArtifactStorage, type FileDigest } from '../registry/artifacts.js';
import { removeOrphans } from './blob-cache.js';
import { DOWNLOAD_DEFAULTS, downloadObject } from './download.js';
import { parseRemote, type S3Location } from './location.js';
import { describeS3Error, isNotFound } from './s3-client.js';

export interface S3ArtifactStoreOptions {
  /** Local cache directory (a directory-store layout under it). */
  cacheDir: string;
  logger?: Logger;
  partSize?: number;
  concurrency?: number;
  onProgress?: (what: string, done: number, total: number | undefined) => void;
}

export class S3ArtifactStore implements ArtifactStorage {
  readonly location: S3Location;
  readonly cache: ArtifactStore;
  private readonly downloads = new Map<string, Promise<string>>();
  private swept = false;

  constructor(
    url: string,
    private readonly client: S3Client,
    private readonly options: S3ArtifactStoreOptions,
  ) {
    const location = parseRemote(url);
    if (location.kind !== 's3') throw new InvalidInputError(`registry artifacts '${url}': only s3://bucket/prefix or a directory`);
    this.location = location;
    this.cache = new ArtifactStore(options.cacheDir);
  }

  get label(): string {
    return this.location.url;
  }

  private keyOf(sha256: string): string {
    this.cache.pathOf(sha256); // validates the digest
    return `${this.location.prefix}sha256/${sha256.slice(0, 2)}/${sha256}/${ARTIFACT_FILE}`;
  }

  private unavailable(action: string, error: unknown): UnavailableError {
    return new UnavailableError(`artifact store ${this.label}: ${action} failed: ${describeS3Error(error)}`);
  }

  pathOf(sha256: string): string {
    return this.cache.pathOf(sha256);
  }

  async ingest<T>(source: string, inspect: (file: string) => Promise<T>): Promise<FileDigest & { path: string; inspected: T }> {
    const stored = await this.cache.ingest(source, inspect);
    await this.upload(stored.path, stored.sha256, stored.size);
    return stored;
  }

  private async head(sha256: string): Promise<{ size: number | undefined } | undefined> {
    try {
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(sha256) }));
      return { size: h.ContentLength };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw this.unavailable(`checking ${sha256}`, error);
    }
  }

  /** Uploads once: an object already stored under this hash with this size is kept. */
  private async upload(file: string, sha256: string, size: number): Promise<void> {
    const existing = await this.head(sha256);
    if (existing?.size === size) return;
    const started = performance.now();
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.location.bucket, Key: this.keyOf(sha256), Body: createReadStream(file), ContentLength: size, Metadata: { sha256 }, ContentType: 'application/octet-stream' },
      partSize: Math.max(5 * 1024 * 1024, this.options.partSize ?? DOWNLOAD_DEFAULTS.partSize),
      queueSize: this.options.concurrency ?? DOWNLOAD_DEFAULTS.concurrency,
      leavePartsOnError: false,
    });
    upload.on('httpUploadProgress', (p) => this.options.onProgress?.(`upload ${sha256.slice(0, 12)}`, p.loaded ?? 0, p.total));
    try {
      await upload.done();
    } catch (error) {
      throw this.unavailable(`uploading ${sha256}`, error);
    }
    const ms = performance.now() - started;
    this.options.logger?.info({ store: this.label, sha256, bytes: size, ms: Math.round(ms) }, 'artifact uploaded');
  }

  async exists(sha256: string): Promise<boolean> {
    return (await this.head(sha256)) !== undefined;
  }

  async verify(sha256: string, what: string): Promise<string> {
    const file = this.cache.pathOf(sha256);
    const cached = await sha256File(file).catch(() => undefined);
    if (cached?.sha256 === sha256) return file;
    // Absent or damaged locally: fetch it (one download per hash at a time in this process).
    let running = this.downloads.get(sha256);
    if (!running) {
      running = this.download(sha256, what).finally(() => this.downloads.delete(sha256));
      this.downloads.set(sha256, running);
    }
    return running;
  }

  private async download(sha256: string, what: string): Promise<string> {
    const target = this.cache.pathOf(sha256);
    const tmpDir = path.join(this.cache.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    if (!this.swept) {
      // What a killed process was downloading is never reused.
      this.swept = true;
      await removeOrphans(tmpDir);
    }
    const temp = path.join(tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}.part`);
    const started = performance.now();
    try {
      const handle = await open(temp, 'wx', 0o600);
      let got;
      try {
        got = await downloadObject(this.client, this.location.bucket, this.keyOf(sha256), handle, {
          partSize: this.options.partSize ?? DOWNLOAD_DEFAULTS.partSize,
          concurrency: this.options.concurrency ?? DOWNLOAD_DEFAULTS.concurrency,
          onBytes: (done, total) => this.options.onProgress?.(`download ${sha256.slice(0, 12)}`, done, total),
        });
        await handle.sync();
      } catch (error) {
        if (isNotFound(error)) throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} is missing from ${this.label} (${this.keyOf(sha256)})`);
        throw this.unavailable(`downloading the artifact of ${what}`, error);
      } finally {
        await handle.close();
      }
      if (got.sha256 !== sha256) {
        throw new InferdError(
          'FAILED_PRECONDITION',
          `the artifact of ${what} is corrupted: ${this.label}${this.keyOf(sha256).slice(this.location.prefix.length)} has sha256 ${got.sha256}, the registry recorded ${sha256}; refusing to use it`,
        );
      }
      await mkdir(path.dirname(target), { recursive: true });
      await chmod(temp, 0o444);
      await rm(target, { force: true });
      await rename(temp, target);
      const ms = performance.now() - started;
      this.options.logger?.info(
        { store: this.label, artifact: what, sha256, bytes: got.size, ms: Math.round(ms), mbPerSecond: Number((got.size / 1e6 / Math.max(ms / 1000, 1e-3)).toFixed(1)) },
        'artifact downloaded',
      );
      return target;
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  async remove(sha256: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(sha256) }));
    } catch (error) {
      if (!isNotFound(error)) throw this.unavailable(`deleting ${sha256}`, error);
    }
    await this.cache.remove(sha256);
  }
}
