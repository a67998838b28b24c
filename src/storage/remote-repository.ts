/**
 * A remote model repository mirrored into the local cache. `sync()` lists the remote files,
 * downloads what changed into the content-addressed blob cache (verified against the store's
 * checksums), then makes the local view `<cache>/repositories/<id>/` match the listing with hard
 * links to the blobs, each placed by an atomic rename. The ModelRepository reads that view as
 * it reads any directory. What a sync learns is kept in `<id>.state.json`, so a restart with
 * an unchanged bucket downloads nothing.
 *
 * A file whose bytes do not match the store's checksum is refused: the view keeps the file it
 * had (the version already serving) or gets none. A store that cannot be reached leaves the
 * view as it is.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { InferdError } from '../core/errors.js';
import { alive, BlobCache } from './blob-cache.js';
import { DOWNLOAD_DEFAULTS, mismatch } from './download.js';
import { parseRemote, type RemoteLocation } from './location.js';
import { createS3Client, describeS3Error, type S3Options } from './s3-client.js';
import { HttpSource, S3Source, type RemoteEntry, type RemoteSource } from './sources.js';

export interface Progress {
  path: string;
  done: number;
  total: number | undefined;
}

export interface RemoteRepositoryOptions {
  cacheDir: string;
  s3?: S3Options;
  /** An S3 client to share (else one is made from `s3`). */
  client?: S3Client;
  logger?: Logger;
  partSize?: number;
  concurrency?: number;
  requestTimeoutMs?: number;
  onProgress?: (p: Progress) => void;
}

export interface SyncReport {
  files: number;
  downloaded: number;
  bytes: number;
  removed: number;
  refused: Array<{ path: string; reason: string }>;
  ms: number;
}

interface StateFile {
  url: string;
  files: Record<string, { tag: string; sha256: string; size: number }>;
}

export class StorageUnavailableError extends InferdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UNAVAILABLE', message, options);
  }
}

export class RemoteRepository {
  readonly location: RemoteLocation;
  /** The local directory the ModelRepository reads. */
  readonly localRoot: string;
  readonly cache: BlobCache;
  private readonly source: RemoteSource;
  private readonly statePath: string;
  private state: StateFile | undefined;
  private savedState: string | undefined;
  private running: Promise<SyncReport> | undefined;
  private unreachable: string | undefined;
  private refusedBefore = new Map<string, string>();
  /** Objects refused for their content, by path: the tag they had. */
  private corrupt = new Map<string, { tag: string; reason: string }>();
  lastSync: SyncReport | undefined;

  constructor(
    url: string,
    private readonly options: RemoteRepositoryOptions,
  ) {
    this.location = parseRemote(url);
    this.cache = new BlobCache(options.cacheDir);
    const id = createHash('sha256').update(this.location.url).digest('hex').slice(0, 16);
    this.localRoot = path.join(options.cacheDir, 'repositories', id);
    this.statePath = path.join(options.cacheDir, 'repositories', `${id}.state.json`);
    this.source =
      this.location.kind === 's3'
        ? new S3Source(options.client ?? createS3Client(options.s3), this.location)
        : new HttpSource(this.location, options.requestTimeoutMs);
  }

  get label(): string {
    return this.source.label;
  }

  /** Syncs now; concurrent callers share one run. Throws StorageUnavailableError when the listing fails. */
  sync(): Promise<SyncReport> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async loadState(): Promise<StateFile> {
    if (this.state) return this.state;
    try {
      const text = await readFile(this.statePath, 'utf8');
      const parsed = JSON.parse(text) as StateFile;
      this.savedState = text;
      this.state = parsed.url === this.location.url && typeof parsed.files === 'object' ? parsed : { url: this.location.url, files: {} };
    } catch {
      this.state = { url: this.location.url, files: {} };
    }
    return this.state;
  }

  private async saveState(state: StateFile): Promise<void> {
    const text = JSON.stringify(state);
    // Most polls change nothing: no write then.
    if (text === this.savedState) return;
    await mkdir(path.dirname(this.statePath), { recursive: true });
    const temp = `${this.statePath}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(temp, text);
    await rename(temp, this.statePath);
    this.savedState = text;
  }

  private async run(): Promise<SyncReport> {
    const log = this.options.logger;
    const started = performance.now();
    const state = await this.loadState();
    await mkdir(this.localRoot, { recursive: true });
    if (this.lastSync === undefined) await this.cache.sweep();
    let entries: RemoteEntry[];
    try {
      entries = await this.source.list();
    } catch (error) {
      const reason = describeS3Error(error);
      if (this.unreachable === undefined) log?.warn({ repository: this.label, reason }, 'model repository store unreachable; serving what is cached');
      this.unreachable = reason;
      throw new StorageUnavailableError(`the model repository ${this.label} cannot be listed: ${reason}`, { cause: error });
    }
    if (this.unreachable !== undefined) log?.info({ repository: this.label }, 'model repository store reachable again');
    this.unreachable = undefined;

    const report: SyncReport = { files: entries.length, downloaded: 0, bytes: 0, removed: 0, refused: [], ms: 0 };
    const wanted = new Map<string, string>();
    for (const entry of entries) {
      const known = state.files[entry.path];
      let blob = known && known.tag === entry.tag ? await this.cache.find(known.sha256, known.size) : undefined;
      const corrupt = this.corrupt.get(entry.path);
      if (!blob && corrupt?.tag === entry.tag) {
        // The same damaged object: not downloaded again until it changes.
        report.refused.push({ path: entry.path, reason: corrupt.reason });
        const previous = known ? await this.cache.find(known.sha256, known.size) : undefined;
        if (previous) wanted.set(entry.path, previous);
        continue;
      }
      if (!blob) {
        try {
          const got = await this.fetch(entry);
          blob = got.blob;
          state.files[entry.path] = { tag: entry.tag, sha256: got.sha256, size: got.size };
          report.downloaded++;
          report.bytes += got.size;
          this.refusedBefore.delete(entry.path);
          this.corrupt.delete(entry.path);
        } catch (error) {
          const reason = error instanceof InferdError ? error.message : describeS3Error(error);
          if (error instanceof InferdError && error.code === 'FAILED_PRECONDITION') this.corrupt.set(entry.path, { tag: entry.tag, reason });
          report.refused.push({ path: entry.path, reason });
          // The previous content of this path (if any) stays in the view.
          const previous = known ? await this.cache.find(known.sha256, known.size) : undefined;
          if (previous) wanted.set(entry.path, previous);
          // Said once per cause, not on every poll.
          if (this.refusedBefore.get(entry.path) !== reason) {
            log?.error({ repository: this.label, file: entry.path, reason, keptPrevious: previous !== undefined }, 'remote artifact refused');
          }
          this.refusedBefore.set(entry.path, reason);
          continue;
        }
      }
      wanted.set(entry.path, blob);
    }
    await this.saveState(state);
    report.removed = await this.updateView(wanted);
    const listed = new Set(entries.map((e) => e.path));
    for (const p of Object.keys(state.files)) if (!listed.has(p)) delete state.files[p];
    await this.saveState(state);
    report.ms = Math.round(performance.now() - started);
    this.lastSync = report;
    if (report.downloaded > 0 || report.removed > 0) {
      log?.info({ repository: this.label, files: report.files, downloaded: report.downloaded, bytes: report.bytes, removed: report.removed, ms: report.ms }, 'model repository synced');
    }
    return report;
  }

  /** Downloads one entry into the blob cache, verified; the temporary file never survives a failure. */
  private async fetch(entry: RemoteEntry): Promise<{ blob: string; sha256: string; size: number }> {
    const log = this.options.logger;
    const started = performance.now();
    const temp = await this.cache.createTemp();
    try {
      let got;
      try {
        got = await this.source.download(entry, temp.handle, {
          partSize: this.options.partSize ?? DOWNLOAD_DEFAULTS.partSize,
          concurrency: this.options.concurrency ?? DOWNLOAD_DEFAULTS.concurrency,
          onBytes: (done, total) => this.options.onProgress?.({ path: entry.path, done, total }),
        });
        await temp.handle.sync();
      } finally {
        await temp.handle.close();
      }
      const bad = mismatch(got, entry.sha256);
      if (bad !== undefined) throw new InferdError('FAILED_PRECONDITION', `${this.label}${entry.path} is corrupted: the downloaded bytes have ${bad}; refusing it`);
      const blob = await this.cache.publish(temp.path, got.sha256);
      const ms = performance.now() - started;
      log?.info(
        { repository: this.label, file: entry.path, bytes: got.size, ms: Math.round(ms), mbPerSecond: Number((got.size / 1e6 / Math.max(ms / 1000, 1e-3)).toFixed(1)), sha256: got.sha256 },
        'artifact downloaded',
      );
      return { blob, sha256: got.sha256, size: got.size };
    } catch (error) {
      await rm(temp.path, { force: true });
      throw error;
    }
  }

  /** Makes the view hold exactly `wanted` (path → blob); returns how many files went away. */
  private async updateView(wanted: Map<string, string>): Promise<number> {
    for (const [rel, blob] of wanted) {
      const target = path.join(this.localRoot, ...rel.split('/'));
      const [have, want] = await Promise.all([stat(target).catch(() => undefined), stat(blob)]);
      if (have && ((have.ino === want.ino && have.dev === want.dev) || (have.nlink === 1 && have.size === want.size && have.mtimeMs >= want.mtimeMs))) continue;
      await mkdir(path.dirname(target), { recursive: true });
      const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
      try {
        await link(blob, temp);
      } catch (error) {
        // A filesystem without hard links gets a copy.
        if (!['EPERM', 'EXDEV', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK'].includes((error as NodeJS.ErrnoException).code ?? '')) throw error;
        await copyFile(blob, temp);
      }
      await rename(temp, target);
    }
    return this.prune(this.localRoot, '', wanted);
  }

  private async prune(dir: string, rel: string, wanted: Map<string, string>): Promise<number> {
    let removed = 0;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const child = path.join(dir, e.name);
      if (e.isDirectory()) {
        removed += await this.prune(child, childRel, wanted);
        await rmdir(child).catch(() => undefined);
      } else if (!wanted.has(childRel)) {
        // Another live process's link in progress is left alone.
        const writer = /^\..*\.(\d+)-[0-9a-f]+\.tmp$/.exec(e.name)?.[1];
        if (writer !== undefined && alive(Number(writer))) continue;
        await rm(child, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
