/** Runs promtool; a missing binary fails the test with the install hint, it is never skipped. */
import { spawnSync } from 'node:child_process';

export interface ToolResult {
  status: number;
  output: string;
}

export function promtool(...args: string[]): ToolResult {
  const binary = process.env['PROMTOOL_BIN'] ?? 'promtool';
  const result = spawnSync(binary, args, { encoding: 'utf8', timeout: 120_000 });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${binary} is not installed (apt-get install prometheus, or set PROMTOOL_BIN)` : result.error.message);
  }
  return { status: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}
