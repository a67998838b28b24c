/**
 * Artifacts encrypted at rest: what the store writes is AES-256-GCM ciphertext bound to the
 * artifact's hash; loading decrypts a checked plaintext copy; a flipped byte, a wrong key or a
 * missing key are refused with a message naming the problem; with no key nothing changes.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/registry/artifacts.js';
import { openRegistry } from '../../src/registry/open.js';
import { ArtifactCipher } from '../../src/security/artifacts/cipher.js';
import { runCli } from '../registry/cli-runner.js';
import { BREAST_CANCER } from '../registry/fixtures.js';

describe('artifact encryption at rest', () => {
  let dir: string;
  const key = randomBytes(32);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-enc-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const open_ = (cipher?: ArtifactCipher) =>
    openRegistry(`sqlite:${path.join(dir, 'registry.db')}`, { home: dir, ...(cipher ? { artifactCipher: cipher } : {}) });

  it('stores ciphertext and serves a verified plaintext copy', async () => {
    const registry = await open_(new ArtifactCipher(key));
    try {
      const version = await registry.register('bc', BREAST_CANCER);
      const stored = path.join(dir, 'artifacts', 'sha256', version.artifact.sha256.slice(0, 2), version.artifact.sha256, 'model.onnx.enc');
      const cipherText = await readFile(stored);
      const plain = await readFile(BREAST_CANCER);
      expect(cipherText.subarray(0, 8).toString()).toBe('INFDENC1');
      expect(cipherText.includes(plain.subarray(0, 64))).toBe(false);
      expect(cipherText.length).toBe(plain.length + 8 + 8 + 12 + 16);

      const resolved = await registry.resolveArtifact('bc@1');
      expect(resolved.path).toBe(registry.artifacts.pathOf(version.artifact.sha256));
      expect((await sha256File(resolved.path)).sha256).toBe(version.artifact.sha256);

      // Registering the same file again keeps one encrypted copy.
      await registry.register('bc2', BREAST_CANCER);
      expect((await readFile(stored)).equals(cipherText)).toBe(true);
    } finally {
      await registry.close();
    }
  });

  it('refuses a tampered ciphertext, a wrong key, and a missing key', async () => {
    const registry = await open_(new ArtifactCipher(key));
    const sha = (await registry.resolve('bc@1')).artifact.sha256;
    const stored = path.join(dir, 'artifacts', 'sha256', sha.slice(0, 2), sha, 'model.onnx.enc');
    await registry.close();

    const wrong = await open_(new ArtifactCipher(randomBytes(32)));
    await expect(wrong.resolveArtifact('bc@1')).rejects.toThrow(/encrypted with another key/);
    await wrong.close();

    const none = await open_();
    await expect(none.resolveArtifact('bc@1')).rejects.toThrow(/encrypted at rest; configure security.artifacts.encryption_key/);
    await none.close();

    await chmod(stored, 0o644);
    const handle = await open(stored, 'r+');
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, 100);
    await handle.write(Buffer.from([byte[0]! ^ 0x01]), 0, 1, 100);
    await handle.close();
    const tampered = await open_(new ArtifactCipher(key));
    await expect(tampered.resolveArtifact('bc@1')).rejects.toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringMatching(/failed authentication/) });
    await tampered.close();
  });

  it('inferd models register encrypts too when $INFERD_CONFIG names a key', async () => {
    const keyFile = path.join(dir, 'artifact.key');
    await writeFile(keyFile, key.toString('hex'), { mode: 0o600 });
    const config = path.join(dir, 'inferd.yaml');
    await writeFile(config, `security:\n  artifacts:\n    encryption_key: { file: ${keyFile} }\n`);
    const home = path.join(dir, 'cli-home');
    const previous = { config: process.env['INFERD_CONFIG'], home: process.env['INFERD_HOME'] };
    process.env['INFERD_CONFIG'] = config;
    process.env['INFERD_HOME'] = home;
    try {
      const result = await runCli(['register', 'bc', BREAST_CANCER, '--registry', `sqlite:${path.join(home, 'registry.db')}`, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const sha = (JSON.parse(result.stdout) as { artifact: { sha256: string } }).artifact.sha256;
      const stored = await readFile(path.join(home, 'artifacts', 'sha256', sha.slice(0, 2), sha, 'model.onnx.enc'));
      expect(stored.subarray(0, 8).toString()).toBe('INFDENC1');
    } finally {
      for (const [name, value] of [['INFERD_CONFIG', previous.config], ['INFERD_HOME', previous.home]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('needs a 32-byte key', () => {
    expect(() => new ArtifactCipher(randomBytes(16))).toThrow(/32 bytes/);
  });
});
