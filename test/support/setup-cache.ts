/** Where scripts/setup/test-deps.sh keeps what it downloads or builds (Kafka jars, SeaweedFS). */
import { homedir } from 'node:os';
import path from 'node:path';

export function setupCacheDir(): string {
  const fromEnv = process.env['INFERD_SETUP_CACHE'];
  if (fromEnv) return path.resolve(fromEnv);
  return path.join(process.env['XDG_CACHE_HOME'] || path.join(homedir(), '.cache'), 'inferd', 'setup');
}
