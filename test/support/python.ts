import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const SETUP_HINT =
  "run bash scripts/setup/test-deps.sh (npm test runs it first)";

/**
 * Directory of the Python virtual environment holding the official KServe V2
 * clients. TRITONCLIENT_VENV overrides the default so a copy of the checkout
 * (for example one built for another Node version) can share one venv.
 */
export function venvDir(): string {
  const fromEnv = process.env.TRITONCLIENT_VENV;
  return fromEnv ? resolve(fromEnv) : join(repoRoot, '.venv');
}

/** Absolute path of the venv's python interpreter; throws when the venv is missing. */
export function venvPython(): string {
  const dir = venvDir();
  const python = join(dir, 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`Python test environment not found at ${dir}: ${SETUP_HINT}`);
  }
  return python;
}
