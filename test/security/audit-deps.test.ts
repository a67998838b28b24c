/**
 * scripts/audit-deps.sh on saved `npm audit --json` reports: an unexplained high advisory
 * fails, an explained one with a future expiry passes, an expired explanation fails again, and
 * a registry without the advisory endpoint is reported as "could not run", not as clean.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../registry/fixtures.js';

const run = promisify(execFile);

const REPORT = {
  auditReportVersion: 2,
  vulnerabilities: {
    'left-pad': {
      name: 'left-pad',
      severity: 'high',
      via: [{ source: 1099, name: 'left-pad', title: 'Prototype pollution', url: 'https://github.com/advisories/GHSA-aaaa-bbbb-cccc', severity: 'high', range: '<1.3.1' }],
      fixAvailable: true,
    },
    wrapper: { name: 'wrapper', severity: 'high', via: ['left-pad'], fixAvailable: true },
  },
  metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 2, critical: 0, total: 2 } },
};

describe('scripts/audit-deps.sh', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-audit-deps-'));
    await writeFile(path.join(dir, 'report.json'), JSON.stringify(REPORT));
    await writeFile(path.join(dir, 'error.json'), JSON.stringify({ message: '405 Method Not Allowed', statusCode: 405, uri: 'https://registry.example.test/-/npm/v1/security/advisories/bulk' }));
    await writeFile(path.join(dir, 'none.txt'), '# nothing excepted\n');
    await writeFile(path.join(dir, 'ok.txt'), 'GHSA-aaaa-bbbb-cccc left-pad 2999-12-31 only the CLI is affected\n');
    await writeFile(path.join(dir, 'expired.txt'), 'GHSA-aaaa-bbbb-cccc left-pad 2000-01-01 was fine once\n');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function audit(report: string, exceptions: string): Promise<{ code: number; out: string }> {
    try {
      const { stdout, stderr } = await run('bash', ['scripts/audit-deps.sh'], { cwd: repoRoot, env: { ...process.env, AUDIT_DEPS_REPORT: path.join(dir, report), AUDIT_DEPS_EXCEPTIONS: path.join(dir, exceptions) } });
      return { code: 0, out: stdout + stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, out: e.stdout + e.stderr };
    }
  }

  it('fails on an unexplained high advisory and names it once', async () => {
    const { code, out } = await audit('report.json', 'none.txt');
    expect(code).toBe(1);
    expect(out).toContain('HIGH     GHSA-aaaa-bbbb-cccc  left-pad@<1.3.1  Prototype pollution (fix available)  [UNEXPLAINED]');
    expect(out).toContain('1 high/critical advisories, 1 unexplained');
  });

  it('passes when the advisory is explained, fails again once the explanation expires', async () => {
    expect(await audit('report.json', 'ok.txt')).toMatchObject({ code: 0, out: expect.stringContaining('EXCEPTED until 2999-12-31: only the CLI is affected') });
    expect(await audit('report.json', 'expired.txt')).toMatchObject({ code: 1, out: expect.stringContaining('EXCEPTION EXPIRED 2000-01-01') });
  });

  it('says the check could not run when the registry has no advisory endpoint', async () => {
    const { code, out } = await audit('error.json', 'none.txt');
    expect(code).toBe(2);
    expect(out).toContain('the advisory check could not run (HTTP 405');
  });
});
