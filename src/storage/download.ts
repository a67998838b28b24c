/**
 * Downloads an object into a temporary file, hashing it on the way (SHA-256, and MD5 to check a
 * single-part ETag). Large objects are fetched as ranged GETs, several at a time, each pinned to
 * the object's ETag so a concurrent overwrite cannot mix two contents; parts are written and
 * hashed in order, so memory stays bounded by concurrency × part size.
 */
import { GetObjectCommand, type GetObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';

export interface DownloadOptions {
  /** Objects at least this large are fetched in ranged parts. */
  partSize?: number;
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as bytes arrive (total may be unknown until the first response). */
  onBytes?: (done: number, total: number | undefined) => void;
}

/** What the store declares about the object, to check the bytes against. */
export interface Declared {
  etag?: string;
  size?: number;
  /** From user metadata `sha256` (hex), as inferd's uploads set it. */
  sha256?: string;
  /** The object's own SHA-256 checksum (full object), hex. */
  checksumSha256?: string;
  /** Server-side encryption with KMS or customer keys: the ETag is then not an MD5. */
  encrypted?: boolean;
}

export interface Downloaded {
  sha256: string;
  md5: string;
  size: number;
  declared: Declared;
}

export const DOWNLOAD_DEFAULTS = { partSize: 16 * 1024 * 1024, concurrency: 4 } as const;

function declaredOf(out: GetObjectCommandOutput, size: number | undefined): Declared {
  const meta = out.Metadata ?? {};
  const sha = meta['sha256']?.toLowerCase();
  const checksum = out.ChecksumSHA256 && !out.ChecksumSHA256.includes('-') && out.ChecksumType !== 'COMPOSITE' ? Buffer.from(out.ChecksumSHA256, 'base64').toString('hex') : undefined;
  const sse = out.ServerSideEncryption;
  return {
    ...(out.ETag !== undefined ? { etag: out.ETag } : {}),
    ...(size !== undefined ? { size } : {}),
    ...(sha !== undefined ? { sha256: sha } : {}),
    ...(checksum !== undefined && checksum.length === 64 ? { checksumSha256: checksum } : {}),
    encrypted: sse === 'aws:kms' || sse === 'aws:kms:dsse' || out.SSECustomerAlgorithm !== undefined,
  };
}

async function* chunks(body: unknown): AsyncIterable<Buffer> {
  for await (const chunk of body as Readable) yield chunk as Buffer;
}

async function drain(out: GetObjectCommandOutput): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks(out.Body)) parts.push(c);
  return Buffer.concat(parts);
}

function totalFromRange(contentRange: string | undefined): number | undefined {
  const m = /\/(\d+)$/.exec(contentRange ?? '');
  return m ? Number(m[1]) : undefined;
}

/** Streams `bucket/key` into `file` (opened for writing, empty); the caller renames or deletes it. */
export async function downloadObject(client: S3Client, bucket: string, key: string, file: FileHandle, options: DownloadOptions = {}): Promise<Downloaded> {
  const partSize = options.partSize ?? DOWNLOAD_DEFAULTS.partSize;
  const concurrency = Math.max(1, options.concurrency ?? DOWNLOAD_DEFAULTS.concurrency);
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  let done = 0;
  const write = async (bytes: Buffer, hashes: Hash[]) => {
    for (const h of hashes) h.update(bytes);
    await file.write(bytes);
    done += bytes.length;
    options.onBytes?.(done, total);
  };
  const send = (range: string | undefined, ifMatch?: string) =>
    client.send(
      new GetObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED', ...(range ? { Range: range } : {}), ...(ifMatch ? { IfMatch: ifMatch } : {}) }),
      options.signal ? { abortSignal: options.signal } : {},
    );

  // The first part tells the size; a small object arrives whole in it.
  let first: GetObjectCommandOutput;
  try {
    first = await send(`bytes=0-${partSize - 1}`);
  } catch (error) {
    // An empty object has no byte 0: the store answers 416; ask for it whole.
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== 416) throw error;
    first = await send(undefined);
  }
  let total = totalFromRange(first.ContentRange) ?? first.ContentLength;
  const declared = declaredOf(first, total);
  if (first.ContentRange === undefined) {
    // The store ignored the range and sent the whole object: stream it.
    for await (const c of chunks(first.Body)) await write(c, [sha, md5]);
  } else {
    for await (const c of chunks(first.Body)) await write(c, [sha, md5]);
    const size = total ?? done;
    const ranges: string[] = [];
    for (let start = partSize; start < size; start += partSize) ranges.push(`bytes=${start}-${Math.min(size, start + partSize) - 1}`);
    // A window of parts in flight; they are consumed (written, hashed) in order.
    const inFlight: Array<Promise<Buffer>> = [];
    let next = 0;
    const launch = () => {
      const range = ranges[next++]!;
      const p = send(range, declared.etag).then(drain);
      p.catch(() => undefined);
      inFlight.push(p);
    };
    while (next < ranges.length && inFlight.length < concurrency) launch();
    while (inFlight.length > 0) {
      const bytes = await inFlight.shift()!;
      if (next < ranges.length) launch();
      await write(bytes, [sha, md5]);
    }
  }
  if (total !== undefined && done !== total) throw new Error(`s3://${bucket}/${key}: received ${done} of ${total} bytes`);
  total ??= done;
  return { sha256: sha.digest('hex'), md5: md5.digest('hex'), size: done, declared: { ...declared, size: total } };
}

/**
 * Checks downloaded bytes against what the store declared; returns why they do not match, or
 * undefined. An ETag is an MD5 only for a single-part upload without KMS or customer keys.
 */
export function mismatch(got: Downloaded, expectedSha256?: string): string | undefined {
  const d = got.declared;
  if (expectedSha256 !== undefined && got.sha256 !== expectedSha256) return `sha256 ${got.sha256}, expected ${expectedSha256}`;
  if (d.sha256 !== undefined && got.sha256 !== d.sha256) return `sha256 ${got.sha256}, the object's metadata declares ${d.sha256}`;
  if (d.checksumSha256 !== undefined && got.sha256 !== d.checksumSha256) return `sha256 ${got.sha256}, the object's checksum is ${d.checksumSha256}`;
  const etag = d.etag?.replace(/"/g, '');
  if (etag !== undefined && /^[0-9a-f]{32}$/.test(etag) && !d.encrypted && etag !== got.md5) return `md5 ${got.md5}, the object's ETag is ${etag}`;
  if (d.size !== undefined && d.size !== got.size) return `${got.size} bytes, the object has ${d.size}`;
  return undefined;
}
