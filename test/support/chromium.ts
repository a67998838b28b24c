import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const DEFAULT = '/usr/lib/chromium/chromium-headless-shell';

/** Path of Debian's chromium-headless-shell (scripts/setup/components/chromium.sh installs it). */
export function chromiumHeadlessShell(): string {
  if (existsSync(DEFAULT)) return DEFAULT;
  try {
    const listed = execFileSync('dpkg', ['-L', 'chromium-headless-shell'], { encoding: 'utf8' })
      .split('\n')
      .find((line) => line.endsWith('/chromium-headless-shell'));
    if (listed && existsSync(listed)) return listed;
  } catch {
    // not installed: the message below says how to get it
  }
  throw new Error('chromium-headless-shell is not installed: run bash scripts/setup/test-deps.sh (apt-get install chromium-headless-shell)');
}
