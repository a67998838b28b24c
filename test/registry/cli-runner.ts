/** Runs `inferd models ...` in-process through a real commander program, capturing output. */
import { registerModelsCommand } from '../../src/cli/models.js';
import { inferdCli, type CliResult } from '../support/cli.js';

const models = inferdCli(registerModelsCommand);

/** `args` are those after `models`. */
export const runCli = (args: string[]): Promise<CliResult> => models(['models', ...args]);
