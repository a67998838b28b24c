/** Runs `inferd models ...` in-process through a real commander program, capturing output. */
import { Command, CommanderError } from 'commander';
import { registerModelsCommand } from '../../src/cli/models.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const program = new Command('inferd')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => {
        stdout += text;
      },
      writeErr: (text) => {
        stderr += text;
      },
    });
  registerModelsCommand(program);
  try {
    await program.parseAsync(['models', ...args], { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (error instanceof CommanderError) return { code: error.exitCode, stdout, stderr };
    throw error;
  }
}
