/**
 * What the security benches share: a throwaway redis-server on a free loopback port, and a
 * registry with one API key (role `client`) whose pepper is in a file, plus the server
 * configurations built on them (registry only, authentication + authorisation, and both with
 * the shared rate limit, set far above any load so every request spends a token).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { freePort } from '../../test/support/ports.js';

export interface BenchRedis {
  port: number;
  url: string;
  stop(): void;
}

/** Debian's redis-server, no persistence, on a free port; about half a second to start. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const redis: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  return { port, url: `redis://127.0.0.1:${port}`, stop: () => void redis.kill('SIGKILL') };
}

export interface SecurityBench {
  dir: string;
  redis: BenchRedis;
  /** `sqlite:` URL of the registry holding the key. */
  registry: string;
  pepperFile: string;
  /** The API key to send as `x-api-key`. */
  key: string;
  /** Configuration files for `inferd serve --config`. */
  configs: { registry: string; auth: string; secure: string; local: string };
  stop(): void;
}

const AUTH = (pepperFile: string): string => `security:
  enabled: true
  authentication: { api_keys: { pepper: { file: ${pepperFile} } } }
  authorization: { roles: { client: { permissions: [infer, metadata] } } }
`;

/** Starts Redis and writes the registry, key and configurations into a new temporary directory. */
export async function securityBench(prefix: string): Promise<SecurityBench> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const redis = await startBenchRedis();
  const pepper = randomBytes(32);
  const pepperFile = join(dir, 'pepper');
  writeFileSync(pepperFile, pepper.toString('hex'));
  chmodSync(pepperFile, 0o600);
  const registry = `sqlite:${join(dir, 'registry.db')}`;
  const db = await openSecurityDatabase(registry);
  const { key } = await new ApiKeyStore(db, { pepper }).create({ name: 'bench', roles: ['client'] }, 'bench');
  await db.close();
  const write = (name: string, text: string): string => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };
  const configs = {
    registry: write('registry.yaml', `registry: ${registry}\n`),
    auth: write('auth.yaml', `registry: ${registry}\n${AUTH(pepperFile)}`),
    secure: write(
      'secure.yaml',
      `registry: ${registry}\n${AUTH(pepperFile)}  rate_limit: { enabled: true, redis_url: ${redis.url}, rate_per_second: 1000000, burst: 1000000 }\n`,
    ),
    // The same limit kept by this replica alone (no Redis): the rate limit's own cost without the shared bucket's.
    local: write('local.yaml', `registry: ${registry}\n${AUTH(pepperFile)}  rate_limit: { enabled: true, rate_per_second: 1000000, burst: 1000000 }\n`),
  };
  return { dir, redis, registry, pepperFile, key, configs, stop: () => redis.stop() };
}
