#!/usr/bin/env -S node --max-semi-space-size=32
// Entry point of the `inferd` command: runs the compiled CLI (npm run build makes dist/).
// The flag above: every request leaves ~18 KB of short-lived objects, and 32 MiB young-generation
// semi-spaces (16 on Node 20) halve the scavenges of a busy server (bench/README.md, "Cost of one
// small REST request"). Run as `node bin/inferd.js`, pass it yourself (NODE_OPTIONS works too).
import { main } from '../dist/cli/index.js';

await main(process.argv);
