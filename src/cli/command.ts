/**
 * The exit statuses every inferd command keeps: 2 for a malformed command line (commander's
 * usage errors, or a UsageError from a command's own checks), 1 for an operation that failed.
 */
import { Command, type ErrorOptions } from 'commander';

/** A command line that does not make sense; exits 2. */
export class UsageError extends Error {}

export class CliCommand extends Command {
  override createCommand(name?: string): CliCommand {
    return new CliCommand(name);
  }

  override error(message: string, errorOptions?: ErrorOptions): never {
    const code = errorOptions?.code ?? 'commander.error';
    const usage = code === 'inferd.usage' || (code.startsWith('commander.') && code !== 'commander.error' && code !== 'commander.executeSubCommandAsync');
    return super.error(message, { code, exitCode: usage ? 2 : (errorOptions?.exitCode ?? 1) });
  }
}
