/**
 * AES-256-GCM for artifact files at rest. Layout: `INFDENC1` (8 bytes), the key id (8 bytes,
 * the start of SHA-256 of the key, so a wrong key is named as such), a random 96-bit IV, the
 * ciphertext, the 128-bit tag. The artifact's SHA-256 (its content address) is the additional
 * authenticated data: a ciphertext moved under another hash does not decrypt. Files are
 * streamed, so a large model is never held in memory.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { InferdError, InvalidInputError } from '../../core/errors.js';

const MAGIC = Buffer.from('INFDENC1');
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + IV_BYTES;

export class ArtifactCipher {
  readonly keyId: Buffer;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new InvalidInputError(`the artifact encryption key must be 32 bytes (AES-256), not ${key.length}; generate one with: openssl rand -hex 32`);
    this.keyId = createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES);
  }

  /** Encrypts `source` into `target` (created, mode 0600), bound to `sha256`. */
  async encryptFile(source: string, target: string, sha256: string): Promise<void> {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(sha256));
    const out = createWriteStream(target, { flags: 'wx', mode: 0o600 });
    out.write(Buffer.concat([MAGIC, this.keyId, iv]));
    await pipeline(createReadStream(source), cipher, out, { end: false });
    const tag = cipher.getAuthTag();
    await new Promise<void>((resolve, reject) => out.end(tag, (error?: Error | null) => (error ? reject(error) : resolve())));
    const handle = await open(target, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /**
   * Decrypts `source` into `target` and returns the plaintext's SHA-256. Throws
   * FAILED_PRECONDITION when the file is not ours, was encrypted under another key, or fails
   * authentication (tampered, truncated, or moved under another hash).
   */
  async decryptFile(source: string, target: string, sha256: string, what: string): Promise<string> {
    const size = (await stat(source)).size;
    if (size < HEADER_BYTES + TAG_BYTES) throw new InferdError('FAILED_PRECONDITION', `the encrypted artifact of ${what} is truncated (${source})`);
    const handle = await open(source, 'r');
    const header = Buffer.alloc(HEADER_BYTES);
    const tag = Buffer.alloc(TAG_BYTES);
    try {
      await handle.read(header, 0, HEADER_BYTES, 0);
      await handle.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
    } finally {
      await handle.close();
    }
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} is not an inferd encrypted artifact (${source})`);
    const keyId = header.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES);
    if (!keyId.equals(this.keyId)) {
      throw new InferdError('FAILED_PRECONDITION', `the artifact of ${what} was encrypted with another key (key id ${keyId.toString('hex')}, configured ${this.keyId.toString('hex')})`);
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, header.subarray(MAGIC.length + KEY_ID_BYTES));
    decipher.setAAD(Buffer.from(sha256));
    decipher.setAuthTag(tag);
    const hash = createHash('sha256');
    const out = createWriteStream(target, { flags: 'w', mode: 0o600 });
    try {
      await pipeline(
        createReadStream(source, { start: HEADER_BYTES, end: size - TAG_BYTES - 1 }),
        decipher,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hash.update(chunk);
            yield chunk;
          }
        },
        out,
      );
    } catch (error) {
      throw new InferdError('FAILED_PRECONDITION', `the encrypted artifact of ${what} failed authentication (tampered, truncated or under the wrong hash); refusing to use it`, { cause: error });
    }
    return hash.digest('hex');
  }
}

/** Whether a file starts like an encrypted artifact. */
export async function isEncryptedArtifact(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(MAGIC.length);
    const { bytesRead } = await handle.read(head, 0, MAGIC.length, 0);
    return bytesRead === MAGIC.length && head.equals(MAGIC);
  } finally {
    await handle.close();
  }
}
