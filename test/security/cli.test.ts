/**
 * `inferd keys` and `inferd audit` through a real commander program against a real SQLite
 * registry and a real configuration file: keys made by the command authenticate, rotation and
 * revocation take effect, the changes land in the audit chain, and `audit verify` names a
 * tampered record with exit status 1.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAuditCommand } from '../../src/cli/audit.js';
import { registerKeysCommand } from '../../src/cli/keys.js';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { inferdCli } from '../support/cli.js';

const cli = inferdCli(registerKeysCommand, registerAuditCommand);

describe('inferd keys / inferd audit', () => {
  let dir: string;
  let config: string;
  let registry: string;
  const pepper = randomBytes(32);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-cli-sec-'));
    registry = `sqlite:${path.join(dir, 'registry.db')}`;
    await writeFile(path.join(dir, 'pepper'), pepper.toString('hex'), { mode: 0o600 });
    await writeFile(path.join(dir, 'audit.key'), randomBytes(32).toString('hex'), { mode: 0o600 });
    config = path.join(dir, 'inferd.yaml');
    await writeFile(
      config,
      [
        `registry: ${registry}`,
        'security:',
        '  enabled: true',
        '  authentication:',
        '    api_keys:',
        `      pepper: { file: ${path.join(dir, 'pepper')} }`,
        '  authorization:',
        '    roles:',
        '      reader: { permissions: [infer, metadata] }',
        '  audit:',
        '    enabled: true',
        '    checkpoint_every: 2',
        `    signing_key: { file: ${path.join(dir, 'audit.key')} }`,
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, lists, rotates and revokes keys, and audits each change', async () => {
    const created = await cli(['keys', 'create', '--config', config, '--name', 'ci', '--role', 'reader', '--model', 'fraud-*', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { key, id } = JSON.parse(created.stdout) as { key: string; id: string };
    expect(key).toMatch(new RegExp(`^inferd_${id}_[A-Za-z0-9_-]{43}$`));

    const db = await openSecurityDatabase(registry);
    const store = new ApiKeyStore(db, { pepper, cacheTtlMs: 0 });
    try {
      expect((await store.authenticate(key))?.models).toEqual(['fraud-*']);
      // The stored hash is not the secret.
      const rows = await db.all('SELECT hash FROM api_keys WHERE id = $1', [id]);
      expect(key).not.toContain(String(rows[0]!['hash']));

      const listed = await cli(['keys', 'list', '--config', config]);
      expect(listed.stdout).toMatch(new RegExp(`${id}\\s+ci\\s+reader\\s+fraud-\\*`));
      expect(listed.stdout).not.toContain(key.slice(24));

      const rotated = await cli(['keys', 'rotate', id, '--config', config, '--overlap', '0']);
      expect(rotated.code, rotated.stderr).toBe(0);
      const newKey = /inferd_[0-9a-f]{16}_\S+/.exec(rotated.stdout)![0];
      expect(await store.authenticate(key)).toBeUndefined();
      expect((await store.authenticate(newKey))?.id).toBe(id);

      expect((await cli(['keys', 'revoke', id, '--config', config])).stdout).toContain(`revoked API key ${id}`);
      expect(await store.authenticate(newKey)).toBeUndefined();
      expect((await cli(['keys', 'list', '--config', config])).stdout).toMatch(/revoked/);
    } finally {
      await db.close();
    }

    const exported = await cli(['audit', 'export', '--config', config]);
    const records = exported.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; action: string; target: string; actor: string });
    expect(records.map((r) => r.action)).toEqual(['keys.create', 'keys.rotate', 'keys.revoke']);
    expect(records.every((r) => r.target === `key/${id}` && r.actor.startsWith('cli:'))).toBe(true);

    const verified = await cli(['audit', 'verify', '--config', config]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('3 records, 1 checkpoints (1 signatures checked)');
    expect(verified.stdout).toContain('audit log intact');
  });

  it('audit verify exits 1 and names the tampered record', async () => {
    const db = await openSecurityDatabase(registry);
    await db.run(`UPDATE audit_log SET actor = 'cli:someone-else' WHERE seq = 2`);
    await db.close();
    const result = await cli(['audit', 'verify', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('EDITED');
    expect(result.stdout).toContain('record 2 was edited');
    expect(result.stderr).toContain('the audit log fails verification: 1 problem(s)');
  });

  it('Ed25519 checkpoints: signed by the server key, verified with the public key file; an edited checkpoint exits 1', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const privateFile = path.join(dir, 'audit-ed25519.pem');
    const publicFile = path.join(dir, 'audit-ed25519.pub.pem');
    await writeFile(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    await writeFile(publicFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    const edRegistry = `sqlite:${path.join(dir, 'ed25519.db')}`;
    const edConfig = path.join(dir, 'ed25519.yaml');
    await writeFile(
      edConfig,
      [
        `registry: ${edRegistry}`,
        'security:',
        '  enabled: true',
        '  authentication: { api_keys: { pepper: { file: ' + path.join(dir, 'pepper') + ' } } }',
        '  authorization: { roles: { reader: { permissions: [infer] } } }',
        '  audit:',
        '    enabled: true',
        '    checkpoint_every: 2',
        '    signing_algorithm: ed25519',
        `    signing_key: { file: ${privateFile} }`,
        '',
      ].join('\n'),
    );
    for (const name of ['a', 'b', 'c']) expect((await cli(['keys', 'create', '--config', edConfig, '--name', name, '--role', 'reader'])).code).toBe(0);
    // Someone holding only the public key (no configuration secrets) verifies.
    const verified = await cli(['audit', 'verify', '--registry', edRegistry, '--public-key-file', publicFile]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('3 records, 1 checkpoints (1 signatures checked)');

    const db = await openSecurityDatabase(edRegistry);
    await db.run(`UPDATE audit_checkpoints SET at = '2000-01-01T00:00:00.000Z' WHERE seq = 2`);
    await db.close();
    const tampered = await cli(['audit', 'verify', '--registry', edRegistry, '--public-key-file', publicFile]);
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toContain('checkpoint at record 2 has an invalid signature (forged or edited)');
    // A file that holds no key is named.
    const notPublic = await cli(['audit', 'verify', '--registry', edRegistry, '--public-key-file', path.join(dir, 'pepper')]);
    expect(notPublic.code).toBe(1);
    expect(notPublic.stderr).toContain('not a PEM public or private key');
  });

  it('bad command lines exit 2 with a message naming the problem', async () => {
    const badDuration = await cli(['keys', 'rotate', '0123456789abcdef', '--config', config, '--overlap', 'soon']);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain(`'soon' is not a duration`);
    const unknownRole = await cli(['keys', 'create', '--config', config, '--name', 'x', '--role', 'superuser']);
    expect(unknownRole.code).toBe(2);
    expect(unknownRole.stderr).toContain(`unknown role(s) 'superuser'`);
    const noPepper = await cli(['keys', 'create', '--registry', registry, '--name', 'x', '--role', 'reader']);
    expect(noPepper.code).toBe(1);
    expect(noPepper.stderr).toContain('the API key pepper is needed');
  });
});
