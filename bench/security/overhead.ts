/**
 * The cost of security on the request path: breast_cancer at concurrency 64 over REST with
 * security off (A) and with API-key authentication, authorisation and a Redis-backed rate
 * limit on (B, a limit far above the load so nothing is refused: every request spends a token
 * leased from Redis), alternating rounds, one run; prints the load average around the run.
 * Each round also reports the server's CPU per request (user + system from /proc, all threads
 * and the event-loop thread alone). Then, unless `--rate 0`, the same A/B again open loop at a
 * fixed request rate both sides sustain: the same arrivals batch alike on both sides, so the
 * CPU per request compares the request paths themselves, whatever else the machine runs.
 *
 *   npx tsx bench/security/overhead.ts [--rounds 5] [--seconds 5] [--rate 6000]
 *
 * Starts a throwaway redis-server (Debian's) on a free loopback port.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiKeyStore } from '../../src/security/authn/api-keys.js';
import { openSecurityDatabase } from '../../src/security/database.js';
import { runAB } from '../support/ab.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '5' }, rate: { type: 'string', default: '6000' } } });
const root = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'inferd-secbench-'));
const port = await new Promise<number>((res) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const a = s.address();
    s.close(() => res(typeof a === 'object' && a ? a.port : 0));
  });
});
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 500));

const pepper = randomBytes(32);
const pepperFile = join(dir, 'pepper');
writeFileSync(pepperFile, pepper.toString('hex'));
chmodSync(pepperFile, 0o600);
const registry = `sqlite:${join(dir, 'registry.db')}`;
const db = await openSecurityDatabase(registry);
const { key } = await new ApiKeyStore(db, { pepper }).create({ name: 'bench', roles: ['client'] }, 'bench');
await db.close();
const secure = join(dir, 'secure.yaml');
writeFileSync(
  secure,
  `registry: ${registry}
security:
  enabled: true
  authentication: { api_keys: { pepper: { file: ${pepperFile} } } }
  authorization: { roles: { client: { permissions: [infer, metadata] } } }
  rate_limit: { enabled: true, redis_url: redis://127.0.0.1:${port}, rate_per_second: 1000000, burst: 1000000 }
`,
);
const loadBefore = loadavg().map((l) => l.toFixed(2));
try {
  const sides = {
    a: { checkout: root },
    b: { checkout: root, config: secure, headers: { 'x-api-key': key } },
    rounds: Number(values.rounds),
    seconds: Number(values.seconds),
    concurrency: 64,
    protocols: ['http' as const],
  };
  const out = await runAB(sides);
  const loadMiddle = loadavg().map((l) => l.toFixed(2));
  const rate = Number(values.rate);
  const fixedRate = rate > 0 ? await runAB({ ...sides, requestRate: rate }) : undefined;
  console.log(
    JSON.stringify(
      {
        ...out,
        ...(fixedRate !== undefined ? { fixedRate: { requestsPerSecond: rate, ...fixedRate } } : {}),
        loadAverage: { before: loadBefore, ...(fixedRate !== undefined ? { betweenPhases: loadMiddle } : {}), after: loadavg().map((l) => l.toFixed(2)) },
      },
      null,
      2,
    ),
  );
} finally {
  redis.kill('SIGKILL');
}
