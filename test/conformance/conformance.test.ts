/**
 * Protocol conformance with the official clients: a real `inferd serve` process on the example
 * repository, driven over HTTP and gRPC by tritonclient (test/conformance/oip_checks.py). Each
 * check of the script is one test here, so a failure names what broke.
 *
 * Needs the compiled CLI (`npm test` builds it) and the Python environment of
 * test/support/python.ts.
 */
import { execFile, execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLES, REPO_ROOT, SHARED_MODELS } from '../support/paths.js';
import { venvPython } from '../support/python.js';
import { startChild, type ChildServer } from '../support/server.js';

const SCRIPT = resolve(REPO_ROOT, 'test', 'conformance', 'oip_checks.py');
type Protocol = 'http' | 'grpc';
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

let server: ChildServer | undefined;

beforeAll(async () => {
  server = await startChild(['--model-repository', EXAMPLES, '--log-level', 'warn']);
}, 120_000);

afterAll(async () => {
  const code = await server?.stop();
  // A clean drain after the whole suite is itself a conformance property.
  expect(code, server?.output()).toBe(0);
}, 60_000);

for (const protocol of ['http', 'grpc'] as const) {
  describe(`OIP over ${protocol} with tritonclient`, () => {
    let results: Results = {};

    beforeAll(async () => {
      const host = protocol === 'http' ? server!.url.replace(/^http:\/\//, '') : `127.0.0.1:${server!.grpcPort}`;
      results = await runChecks(protocol, host);
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
