/**
 * Runs `inferd bench` straight from the sources (through tsx), so that the peer comparison does
 * not depend on a build: `npx tsx bench/peers/bench-cli.ts bench -m model ...`.
 */
import { Command } from 'commander';
import { registerBenchCommand } from '../../src/cli/bench.js';

const program = new Command('inferd');
registerBenchCommand(program);
await program.parseAsync(process.argv);
