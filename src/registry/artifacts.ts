/**
 * Content-addressed artifact store on disk: `<root>/sha256/<ab>/<hash>/model.onnx`.
 * Files are copied in under a temporary name, renamed into place and made read-only, so a
 * registered version never changes under a server that loads it; reads verify the hash.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InferdError, InvalidInputError } from '../core/errors.js';
import type { ArtifactCipher } from '../security/artifacts/cipher.js';

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

async function fileExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function describeFsError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface ArtifactStoreOptions {
  /**
   * Encrypts artifacts at rest (AES-256-GCM). Runtimes load from a file path, so `verify`
   * decrypts a checked plaintext copy into `plainDir` (mode 0700; put it on a tmpfs) and
   * `pathOf` names that copy.
   */
  cipher?: ArtifactCipher;
  plainDir?: string;
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
  private readonly cipher: ArtifactCipher | undefined;
  private readonly plainDir: string;

  constructor(
    readonly root: string,
    options: ArtifactStoreOptions = {},
  ) {
    this.cipher = options.cipher;
    this.plainDir = options.plainDir ?? path.join(os.tmpdir(), `inferd-artifacts-${process.getuid?.() ?? 'user'}`);
  }

  get label(): string {
    return this.root;
  }

  /** Where the store keeps the artifact as written (plaintext, or ciphertext when encrypting). */
  private storedPathOf(sha256: string): string {
    if (!isSha256(sha256)) throw new InvalidInputError(`'${sha256}' is not a SHA-256 digest`);
    return path.join(this.root, 'sha256', sha256.slice(0, 2), sha256, ARTIFACT_FILE);
  }

  private encryptedPathOf(sha256: string): string {
    return `${this.storedPathOf(sha256)}.enc`;
  }

  /** The plaintext file a runtime loads (after `verify`). */
  pathOf(sha256: string): string {
    const stored = this.storedPathOf(sha256);
    return this.cipher === undefined ? stored : path.join(this.plainDir, sha256, ARTIFACT_FILE);
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
      if (this.cipher !== undefined) return { ...digest, path: await this.publishEncrypted(temp, digest.sha256), inspected };
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

  /** Encrypts the checked plaintext `temp` into place (unless a sound copy is there) and removes it. */
  private async publishEncrypted(temp: string, sha256: string): Promise<string> {
    const cipher = this.cipher!;
    const target = this.encryptedPathOf(sha256);
    await mkdir(path.dirname(target), { recursive: true });
    try {
      if (!(await this.encryptedIntact(sha256))) {
        const sealed = `${temp}.enc`;
        try {
          await cipher.encryptFile(temp, sealed, sha256);
          await chmod(sealed, 0o444);
          await rename(sealed, target);
        } finally {
          await rm(sealed, { force: true });
        }
      }
    } finally {
      await rm(temp, { force: true });
    }
    return target;
  }

  private async encryptedIntact(sha256: string): Promise<boolean> {
    try {
      await this.decryptChecked(sha256, 'an existing artifact');
      return true;
    } catch {
      return false;
    }
  }

  /** Decrypts into the plaintext directory, checking the tag and the SHA-256; returns the plaintext path. */
  private async decryptChecked(sha256: string, what: string): Promise<string> {
    const cipher = this.cipher!;
    const target = this.pathOf(sha256);
    await mkdir(this.plainDir, { recursive: true, mode: 0o700 });
    await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const actual = await cipher.decryptFile(this.encryptedPathOf(sha256), temp, sha256, what);
      if (actual !== sha256) {
        throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} is corrupted: it decrypts to sha256 ${actual}, the registry recorded ${sha256}; refusing to use it`);
      }
      await rename(temp, target);
      return target;
    } finally {
      await rm(temp, { force: true });
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
    for (const file of this.cipher === undefined ? [this.storedPathOf(sha256)] : [this.encryptedPathOf(sha256), this.storedPathOf(sha256)]) {
      try {
        await stat(file);
        return true;
      } catch {
        // try the next form
      }
    }
    return false;
  }

  /**
   * Returns the path after checking the file still hashes to `sha256`; `what` names the owner
   * in the error ("model 'x' version 3").
   */
  async verify(sha256: string, what: string): Promise<string> {
    if (this.cipher !== undefined) {
      if (await fileExists(this.encryptedPathOf(sha256))) return this.decryptChecked(sha256, what);
      // Stored before encryption was turned on: checked as plaintext, then served from the plaintext directory.
      const plain = await this.verifyPlain(sha256, what);
      const target = this.pathOf(sha256);
      await mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
      await copyFile(plain, target);
      return target;
    }
    return this.verifyPlain(sha256, what);
  }

  private async verifyPlain(sha256: string, what: string): Promise<string> {
    const file = this.storedPathOf(sha256);
    let actual: FileDigest;
    try {
      actual = await sha256File(file);
    } catch (error) {
      if (await fileExists(this.encryptedPathOf(sha256))) {
        throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} is encrypted at rest; configure security.artifacts.encryption_key to load it`);
      }
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
    await rm(path.dirname(this.storedPathOf(sha256)), { recursive: true, force: true });
    if (this.cipher !== undefined) await rm(path.dirname(this.pathOf(sha256)), { recursive: true, force: true });
  }
}
