#!/usr/bin/env node
// Entry point of the `inferd` command: runs the compiled CLI (npm run build makes dist/).
import { main } from '../dist/cli/index.js';

await main(process.argv);
