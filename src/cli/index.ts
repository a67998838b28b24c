/** The `inferd` command line. One file per command; this one only assembles them. */
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { InferdError } from '../core/errors.js';
import { registerAuditCommand } from './audit.js';
import { registerBatchCommands } from './batch.js';
import { registerBenchCommand } from './bench.js';
import { registerCacheCommand } from './cache.js';
import { registerDriftCommand } from './drift.js';
import { registerKeysCommand } from './keys.js';
import { registerModelsCommand } from './models.js';
import { registerRulesCommand } from './rules.js';
import { registerServeCommand } from './serve.js';
import { registerTrafficCommand } from './traffic.js';
import { registerExperimentCommand } from './experiment.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

export function buildProgram(): Command {
  const program = new Command('inferd').description('a production model server for Node.js').version(pkg.version);
  // Subcommands copy these settings when created, so they come first.
  program.exitOverride();
  registerServeCommand(program);
  registerModelsCommand(program);
  registerRulesCommand(program);
  registerBenchCommand(program);
  registerDriftCommand(program);
  registerKeysCommand(program);
  registerAuditCommand(program);
  registerTrafficCommand(program);
  registerExperimentCommand(program);
  registerBatchCommands(program);
  registerCacheCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`inferd: ${message}\n`);
    process.exitCode = error instanceof InferdError && error.code === 'INVALID_ARGUMENT' ? 2 : 1;
  }
}


