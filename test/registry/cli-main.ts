/** A stand-alone `inferd` with only the models command, to test real exit statuses. */
import { Command } from 'commander';
import { registerModelsCommand } from '../../src/cli/models.js';

const program = new Command('inferd');
registerModelsCommand(program);
await program.parseAsync(process.argv);
