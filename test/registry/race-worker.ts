/**
 * One contender of a cross-process race: waits until a shared start time, then tries a
 * compare-and-set alias move and prints the outcome as JSON.
 * Usage: race-worker.ts <registry-url> <home> <start-ms> <model> <alias> <expected> <version>
 */
import { RegistryConflictError } from '../../src/registry/errors.js';
import { openRegistry } from '../../src/registry/open.js';

const [url, home, start, model, alias, expected, version] = process.argv.slice(2) as [string, string, string, string, string, string, string];
const registry = await openRegistry(url, { home, actor: `pid-${process.pid}` });
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(start) - Date.now())));
try {
  const move = await registry.setAlias(model, alias, Number(version), { expected: Number(expected) });
  process.stdout.write(JSON.stringify({ won: true, move }));
} catch (error) {
  const current = error instanceof RegistryConflictError ? error.current : undefined;
  process.stdout.write(JSON.stringify({ won: false, message: (error as Error).message, current }));
} finally {
  await registry.close();
}
