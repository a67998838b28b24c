/**
 * The remote side of a repository: what files it holds (path, size, a version tag that changes
 * with the content) and how to fetch one. `s3://bucket/prefix` lists the prefix; an http(s) URL
 * is either an index (`*.json`: `{"files": [{"path", "url"?, "sha256"?, "size"?}]}`, URLs
 * relative to the index) or one artifact, served as model `<file name>` version 1.
 */
import { paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { posix } from 'node:path';
import { downloadObject, type DownloadOptions, type Downloaded } from './download.js';
import { redactLocation, type HttpLocation, type S3Location } from './location.js';

export interface RemoteEntry {
  /** Path inside the repository, '/'-separated. */
  path: string;
  size: number | undefined;
  /** Changes whenever the content does (ETag, or the index's SHA-256). */
  tag: string;
  /** SHA-256 the listing declares, when it does. */
  sha256?: string;
}

export interface RemoteSource {
  readonly label: string;
  list(): Promise<RemoteEntry[]>;
  download(entry: RemoteEntry, file: FileHandle, options: DownloadOptions): Promise<Downloaded>;
}

/** A repository path is safe when it stays inside the repository and names no hidden file. */
export function safeRelativePath(rel: string): boolean {
  if (rel === '' || rel.startsWith('/') || rel.includes('\\') || rel.includes('\0')) return false;
  return rel.split('/').every((part) => part !== '' && part !== '.' && part !== '..' && !part.startsWith('.'));
}

export class S3Source implements RemoteSource {
  readonly label: string;

  constructor(
    private readonly client: S3Client,
    private readonly location: S3Location,
  ) {
    this.label = location.url;
  }

  async list(): Promise<RemoteEntry[]> {
    const out: RemoteEntry[] = [];
    const { bucket, prefix } = this.location;
    for await (const page of paginateListObjectsV2({ client: this.client, pageSize: 1000 }, { Bucket: bucket, Prefix: prefix })) {
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined || o.Key.endsWith('/')) continue;
        const rel = o.Key.slice(prefix.length);
        if (!safeRelativePath(rel)) continue;
        out.push({ path: rel, size: o.Size, tag: `${o.ETag ?? ''}:${o.Size ?? ''}:${o.LastModified?.getTime() ?? ''}` });
      }
    }
    return out;
  }

  download(entry: RemoteEntry, file: FileHandle, options: DownloadOptions): Promise<Downloaded> {
    return downloadObject(this.client, this.location.bucket, this.location.prefix + entry.path, file, options);
  }
}

interface IndexFile {
  path: string;
  url?: string;
  sha256?: string;
  size?: number;
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    url: string,
  ) {
    super(`${redactLocation(url)} answered HTTP ${status}`);
  }
}

/** Network errors and 5xx/429 answers are retried with backoff; 4xx are final. */
const httpRetry = retry(
  handleWhen((e) => !(e instanceof HttpStatusError) || e.status >= 500 || e.status === 429),
  { maxAttempts: 4, backoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 5000 }) },
);

export class HttpSource implements RemoteSource {
  readonly label: string;
  private urls = new Map<string, string>();

  constructor(
    private readonly location: HttpLocation,
    private readonly requestTimeoutMs = 120_000,
  ) {
    this.label = redactLocation(location.url);
  }

  private get isIndex(): boolean {
    return new URL(this.location.url).pathname.endsWith('.json');
  }

  private async request(url: string, method: 'GET' | 'HEAD', signal?: AbortSignal): Promise<Response> {
    return httpRetry.execute(async () => {
      const timeout = AbortSignal.timeout(this.requestTimeoutMs);
      const r = await fetch(url, { method, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      if (!r.ok) {
        await r.body?.cancel().catch(() => undefined);
        throw new HttpStatusError(r.status, url);
      }
      return r;
    });
  }

  private async validators(url: string): Promise<string> {
    const head = await this.request(url, 'HEAD');
    const h = head.headers;
    return `${h.get('etag') ?? ''}:${h.get('last-modified') ?? ''}:${h.get('content-length') ?? ''}`;
  }

  async list(): Promise<RemoteEntry[]> {
    if (!this.isIndex) {
      const url = this.location.url;
      const base = posix.basename(new URL(url).pathname);
      const name = base.replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '_') || 'model';
      const tag = await this.validators(url);
      const size = Number(tag.split(':').at(-1) || NaN);
      const rel = `${name}/1/${base.endsWith('.onnx') ? 'model.onnx' : base}`;
      this.urls.set(rel, url);
      return [{ path: rel, size: Number.isFinite(size) ? size : undefined, tag }];
    }
    const r = await this.request(this.location.url, 'GET');
    const body = (await r.json()) as { files?: unknown };
    if (!Array.isArray(body.files)) throw new Error(`${this.label}: an index needs {"files": [{"path": ..., "sha256": ...}]}`);
    const out: RemoteEntry[] = [];
    this.urls.clear();
    for (const f of body.files as IndexFile[]) {
      if (typeof f?.path !== 'string' || !safeRelativePath(f.path)) throw new Error(`${this.label}: index entry ${JSON.stringify(f)} has no safe relative 'path'`);
      if (f.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(f.sha256)) throw new Error(`${this.label}: index entry '${f.path}' has a malformed sha256`);
      const url = new URL(f.url ?? f.path, this.location.url).toString();
      this.urls.set(f.path, url);
      out.push({
        path: f.path,
        size: typeof f.size === 'number' ? f.size : undefined,
        // Without a declared hash, the server's validators tell a changed file.
        tag: f.sha256 ?? (await this.validators(url)),
        ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}),
      });
    }
    return out;
  }

  async download(entry: RemoteEntry, file: FileHandle, options: DownloadOptions): Promise<Downloaded> {
    const url = this.urls.get(entry.path);
    if (url === undefined) throw new Error(`${this.label}: '${entry.path}' is not listed`);
    const r = await this.request(url, 'GET', options.signal);
    const length = Number(r.headers.get('content-length') ?? NaN);
    const total = Number.isFinite(length) ? length : entry.size;
    const sha = createHash('sha256');
    const md5 = createHash('md5');
    let done = 0;
    for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
      sha.update(chunk);
      md5.update(chunk);
      await file.write(chunk);
      done += chunk.length;
      options.onBytes?.(done, total);
    }
    if (total !== undefined && done !== total) throw new Error(`${redactLocation(url)}: received ${done} of ${total} bytes`);
    return {
      sha256: sha.digest('hex'),
      md5: md5.digest('hex'),
      size: done,
      declared: { ...(entry.size !== undefined ? { size: entry.size } : {}), ...(entry.sha256 !== undefined ? { sha256: entry.sha256 } : {}) },
    };
  }
}
