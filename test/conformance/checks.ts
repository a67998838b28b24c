/**
 * Runs the tritonclient checks of oip_checks.py against a live server and turns each check into
 * one test, so a failure names what broke. Shared by the suite on a plain inferd and the suite
 * on inferd serving remote models.
 */
import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, SHARED_MODELS } from '../support/paths.js';
import { venvPython } from '../support/python.js';
import type { ChildServer } from '../support/server.js';

const SCRIPT = resolve(REPO_ROOT, 'test', 'conformance', 'oip_checks.py');
export type Protocol = 'http' | 'grpc';
type Results = Record<string, { ok: boolean; detail: string }>;

/** The checks the script runs for a protocol, read from the script itself. */
function checkNames(protocol: Protocol): string[] {
  const out = execFileSync(venvPython(), [SCRIPT, '--protocol', protocol, '--url', '-', '--golden-dir', '-', '--list'], { encoding: 'utf8' });
  return JSON.parse(out) as string[];
}

function runChecks(protocol: Protocol, url: string): Promise<Results> {
  return new Promise((resolvePromise, reject) => {
    execFile(
      venvPython(),
      [SCRIPT, '--protocol', protocol, '--url', url, '--golden-dir', SHARED_MODELS],
      { encoding: 'utf8', timeout: 240_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const last = stdout.trim().split('\n').pop() ?? '';
        try {
          resolvePromise(JSON.parse(last) as Results);
        } catch {
          reject(new Error(`the ${protocol} checks did not report (${error?.message ?? 'no error'}):\n${stdout}\n${stderr}`));
        }
      },
    );
  });
}

/**
 * Starts an inferd process with `start`, runs every check over HTTP and over gRPC against it
 * (one test per check), then stops it: a clean drain after the checks is itself checked.
 */
export function describeChecks(label: string, start: () => Promise<ChildServer>): void {
  describe(label, () => {
    let server: ChildServer | undefined;

    beforeAll(async () => {
      server = await start();
    }, 120_000);

    afterAll(async () => {
      const code = await server?.stop();
      expect(code, server?.output()).toBe(0);
    }, 60_000);

    for (const protocol of ['http', 'grpc'] as const) {
      describe(`OIP over ${protocol} with tritonclient`, () => {
        let results: Results = {};

        beforeAll(async () => {
          const address = protocol === 'http' ? server!.url.replace(/^http:\/\//, '') : `127.0.0.1:${server!.grpcPort}`;
          results = await runChecks(protocol, address);
        }, 240_000);

        for (const name of checkNames(protocol)) {
          it(name, () => {
            const result = results[name];
            expect(result, `${name} did not run`).toBeDefined();
            expect(result!.ok, result!.detail).toBe(true);
          });
        }
      });
    }
  });
}
