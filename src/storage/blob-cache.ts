/**
 * The local download cache: blobs named by their SHA-256 (`<root>/blobs/sha256/<ab>/<hash>`),
 * written under a temporary name in `<root>/tmp` and renamed into place only once complete and
 * verified, so a reader never sees a partial file and processes sharing the cache (replicas on
 * one host) at worst download the same content twice. Temporary names carry the writer's pid:
 * a later start removes those a dead process left behind.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

export interface TempFile {
  path: string;
  handle: FileHandle;
}

/** Whether the process that wrote a temporary file (pid in its name) still runs. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class BlobCache {
  readonly tmpDir: string;

  constructor(readonly root: string) {
    this.tmpDir = path.join(root, 'tmp');
  }

  blobPath(sha256: string): string {
    return path.join(this.root, 'blobs', 'sha256', sha256.slice(0, 2), sha256);
  }

  /** The blob's path when it is present with the expected size. */
  async find(sha256: string, size?: number): Promise<string | undefined> {
    const file = this.blobPath(sha256);
    try {
      const s = await stat(file);
      return size === undefined || s.size === size ? file : undefined;
    } catch {
      return undefined;
    }
  }

  async createTemp(suffix = ''): Promise<TempFile> {
    await mkdir(this.tmpDir, { recursive: true });
    const file = path.join(this.tmpDir, `${process.pid}-${randomBytes(6).toString('hex')}${suffix}.part`);
    return { path: file, handle: await open(file, 'wx', 0o600) };
  }

  /** Moves a complete, verified temporary file into place (read-only) and returns its path. */
  async publish(temp: string, sha256: string): Promise<string> {
    const target = this.blobPath(sha256);
    await mkdir(path.dirname(target), { recursive: true });
    await chmod(temp, 0o444);
    await rename(temp, target);
    return target;
  }

  /** Removes temporary files whose writer is gone (a crash or a kill mid-download). */
  sweep(): Promise<number> {
    return removeOrphans(this.tmpDir);
  }
}

/** Removes the `<pid>-<random>...` files of `dir` whose process is gone. */
export async function removeOrphans(dir: string): Promise<number> {
  const names = await readdir(dir).catch(() => [] as string[]);
  let removed = 0;
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && (pid === process.pid || alive(pid))) continue;
    await rm(path.join(dir, name), { force: true });
    removed++;
  }
  return removed;
}
