/** Starts a built inferd (bin/inferd.js) on a temporary repository, for the cache and ensemble benches. */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { freePort } from '../../test/support/ports.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { serverNodeFlags } from '../support/node-flags.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const EXAMPLES = join(ROOT, 'examples', 'models');

export async function repository(models: Record<string, { copyFrom?: string; config?: string }>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inferd-bench-'));
  for (const [name, spec] of Object.entries(models)) {
    const dir = join(root, name);
    await mkdir(join(dir, '1'), { recursive: true });
    if (spec.copyFrom) await cp(spec.copyFrom, dir, { recursive: true });
    if (spec.config !== undefined) await writeFile(join(dir, 'config.yaml'), spec.config, { flag: spec.copyFrom ? 'a' : 'w' });
  }
  return root;
}

export async function serve(repo: string, configFile?: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const args = [...serverNodeFlags(ROOT), join(ROOT, 'bin', 'inferd.js'), 'serve', '--model-repository', repo, '--host', '127.0.0.1', '--port', String(port), '--grpc-port', '-1', '--log-level', 'warn'];
  if (configFile) args.push('--config', configFile);
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const started = Date.now();
  while (!(await fetch(`${url}/health/ready`).then((r) => r.ok, () => false))) {
    if (Date.now() - started > 60_000) throw new Error('inferd did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
