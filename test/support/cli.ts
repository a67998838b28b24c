/** Runs `inferd` commands in-process through a real commander program, capturing output and exit status. */
import { Command, CommanderError } from 'commander';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A runner of the commands that `register` adds: each call builds a fresh `inferd` program and
 * parses `args` (without the program name); a commander exit becomes `code`, anything else throws.
 */
export function inferdCli(...register: Array<(program: Command) => unknown>): (args: string[]) => Promise<CliResult> {
  return async (args) => {
    let stdout = '';
    let stderr = '';
    // Output is configured before the commands are added: subcommands copy it when created.
    const program = new Command('inferd').exitOverride().configureOutput({
      writeOut: (text) => void (stdout += text),
      writeErr: (text) => void (stderr += text),
    });
    for (const add of register) add(program);
    try {
      await program.parseAsync(args, { from: 'user' });
      return { code: 0, stdout, stderr };
    } catch (error) {
      if (error instanceof CommanderError) return { code: error.exitCode, stdout, stderr };
      throw error;
    }
  };
}
