/**
 * Content-addressed artifact store on disk: `<root>/sha256/<ab>/<hash>/model.onnx`.
 * Files are copied in under a temporary name, renamed into place and made read-only, so a
 * registered version never changes under a server that loads it; reads verify the hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { InferdError, InvalidInputError } from '../core/errors.js';

export const ARTIFACT_FILE = 'model.onnx';

export interface FileDigest {
  sha256: string;
  size: number;
}

export async function sha256File(file: string): Promise<FileDigest> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    size += bytes.length;
  }
  return { sha256: hash.digest('hex'), size };
}

function isSha256(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}

function describeFsError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Where a registry keeps artifacts: this directory store, or one in object storage that keeps a
 * local cache (src/storage/s3-artifacts.ts). `pathOf` is the local file a verified artifact is at.
 */
export interface ArtifactStorage {
  readonly label: string;
  pathOf(sha256: string): string;
  ingest<T>(source: string, inspect: (file: string) => Promise<T>): Promise<FileDigest & { path: string; inspected: T }>;
  exists(sha256: string): Promise<boolean>;
  verify(sha256: string, what: string): Promise<string>;
  remove(sha256: string): Promise<void>;
}

export class ArtifactStore implements ArtifactStorage {
  constructor(readonly root: string) {}

  get label(): string {
    return this.root;
  }

  pathOf(sha256: string): string {
    if (!isSha256(sha256)) throw new InvalidInputError(`'${sha256}' is not a SHA-256 digest`);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256, ARTIFACT_FILE);
  }

  /**
   * Copies `source` into the store, hashing while copying. `inspect` sees the copy before it
   * is published (to read the signature): if it throws, nothing is published.
   */
  async ingest<T>(source: string, inspect: (file: string) => Promise<T>): Promise<FileDigest & { path: string; inspected: T }> {
    const tmpDir = path.join(this.root, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const temp = path.join(tmpDir, `${randomBytes(8).toString('hex')}.onnx`);
    try {
      const digest = await this.copy(source, temp);
      const inspected = await inspect(temp);
      const target = this.pathOf(digest.sha256);
      await mkdir(path.dirname(target), { recursive: true });
      const existing = await this.check(target, digest.sha256);
      if (existing === 'ok') {
        await rm(temp, { force: true });
      } else {
        // Absent, or a damaged copy: the fresh one replaces it atomically.
        await chmod(temp, 0o444);
        await rename(temp, target);
      }
      return { ...digest, path: target, inspected };
    } catch (error) {
      await rm(temp, { force: true });
      throw error;
    }
  }

  private async copy(source: string, temp: string): Promise<FileDigest> {
    let info;
    try {
      info = await stat(source);
    } catch (error) {
      throw new InvalidInputError(`cannot read model file ${source}: ${describeFsError(error)}`);
    }
    if (!info.isFile()) throw new InvalidInputError(`${source} is not a file`);
    const hash = createHash('sha256');
    let size = 0;
    const out = await open(temp, 'wx', 0o600);
    try {
      for await (const chunk of createReadStream(source)) {
        const bytes = chunk as Buffer;
        hash.update(bytes);
        size += bytes.length;
        await out.write(bytes);
      }
      await out.sync();
    } finally {
      await out.close();
    }
    return { sha256: hash.digest('hex'), size };
  }

  private async check(file: string, sha256: string): Promise<'ok' | 'missing' | 'corrupt'> {
    try {
      return (await sha256File(file)).sha256 === sha256 ? 'ok' : 'corrupt';
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
      throw error;
    }
  }

  async exists(sha256: string): Promise<boolean> {
    try {
      await stat(this.pathOf(sha256));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Returns the path after checking the file still hashes to `sha256`; `what` names the owner
   * in the error ("model 'x' version 3").
   */
  async verify(sha256: string, what: string): Promise<string> {
    const file = this.pathOf(sha256);
    let actual: FileDigest;
    try {
      actual = await sha256File(file);
    } catch (error) {
      throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} is missing from ${file} (${describeFsError(error)}); is the artifact directory shared with this host?`);
    }
    if (actual.sha256 !== sha256) {
      throw new InferdError(
        'FAILED_PRECONDITION',
        `the artifact of ${what} is corrupted: ${file} has sha256 ${actual.sha256}, the registry recorded ${sha256}; refusing to use it`,
      );
    }
    return file;
  }

  async remove(sha256: string): Promise<void> {
    await rm(path.dirname(this.pathOf(sha256)), { recursive: true, force: true });
  }
}
