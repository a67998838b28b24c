/**
 * The Node flags `inferd` runs with when started as a command: its bin file's shebang
 * (`#!/usr/bin/env -S node <flags>`). Benches start the server as `node <flags> bin/inferd.js`
 * with the Node under test, so they read the flags of the checkout they serve (an older
 * checkout compared with `--base` runs with its own).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export function serverNodeFlags(checkout: string): string[] {
  let first: string;
  try {
    first = readFileSync(resolve(checkout, 'bin', 'inferd.js'), 'utf8').split('\n', 1)[0]!;
  } catch {
    return [];
  }
  const m = /^#!\s*\/usr\/bin\/env\s+-S\s+node\s+(.*)$/.exec(first);
  return m === null ? [] : m[1]!.trim().split(/\s+/).filter((f) => f.startsWith('--'));
}
