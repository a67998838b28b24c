import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serverNodeFlags } from '../../../bench/support/node-flags.js';

const ROOT = resolve(import.meta.dirname, '..', '..', '..');
const run = promisify(execFile);

describe('the inferd command', () => {
  it('starts Node with the larger young generation its shebang names', async () => {
    expect(serverNodeFlags(ROOT)).toEqual(['--max-semi-space-size=32']);
    // Executed as a program (as npm's bin link runs it), the shebang's flags reach Node.
    const { stdout } = await run(resolve(ROOT, 'bin', 'inferd.js'), ['--version'], { env: { ...process.env, PATH: `${resolve(process.execPath, '..')}:${process.env['PATH']}` } });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('reads no flags from a checkout whose bin has none', () => {
    expect(serverNodeFlags('/nonexistent')).toEqual([]);
  });
});
