/**
 * Where the cost of security goes, one layer at a time: breast_cancer at concurrency 64 over REST,
 * four A/B runs from the same build, each adding one layer to the previous one's B side:
 * the API-key header sent (client and parser cost), a registry database configured, API-key
 * authentication + authorisation, and the shared rate limit leasing from a throwaway
 * redis-server. Prints each pair's medians, B / A and the 1-minute load average.
 *
 *   npx tsx bench/security/layers.ts [rounds]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { runAB, freePort } from '../support/ab.js';
const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'inferd-split-'));
const port = await freePort();
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));
const pepper = randomBytes(32); const pepperFile = join(dir, 'pepper'); writeFileSync(pepperFile, pepper.toString('hex')); chmodSync(pepperFile, 0o600);
const registry = `sqlite:${join(dir, 'registry.db')}`;
const db = await openSecurityDatabase(registry);
const { key } = await new ApiKeyStore(db, { pepper }).create({ name: 'bench', roles: ['client'] }, 'bench');
await db.close();
const reg = join(dir, 'reg.yaml'); writeFileSync(reg, `registry: ${registry}\n`);
const auth = join(dir, 'auth.yaml'); writeFileSync(auth, `registry: ${registry}
security:
  enabled: true
  authentication: { api_keys: { pepper: { file: ${pepperFile} } } }
  authorization: { roles: { client: { permissions: [infer, metadata] } } }
`);
const secure = join(dir, 'secure.yaml'); writeFileSync(secure, `registry: ${registry}
security:
  enabled: true
  authentication: { api_keys: { pepper: { file: ${pepperFile} } } }
  authorization: { roles: { client: { permissions: [infer, metadata] } } }
  rate_limit: { enabled: true, redis_url: redis://127.0.0.1:${port}, rate_per_second: 1000000, burst: 1000000 }
`);
const h = { 'x-api-key': key };
const pairs: Record<string, [object, object]> = {
  'off vs off+header': [{ checkout: root }, { checkout: root, headers: h }],
  'off+header vs registry+header': [{ checkout: root, headers: h }, { checkout: root, config: reg, headers: h }],
  'registry vs auth': [{ checkout: root, config: reg, headers: h }, { checkout: root, config: auth, headers: h }],
  'auth vs auth+limit': [{ checkout: root, config: auth, headers: h }, { checkout: root, config: secure, headers: h }],
};
try {
  for (const [name, [a, b]] of Object.entries(pairs)) {
    const out = await runAB({ a: a as never, b: b as never, rounds: Number(process.argv[2] ?? 4), seconds: 3, concurrency: 64, protocols: ['http'] });
    console.log(name, JSON.stringify(out.summary), loadavg()[0].toFixed(2));
  }
} finally { redis.kill('SIGKILL'); }
