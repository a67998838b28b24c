#!/usr/bin/env node
// Entry point of the `inferd` command: runs the compiled CLI.
import '../dist/cli/index.js';
