import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { registerDriftCommand } from '../../src/cli/drift.js';
import { registerModelsCommand } from '../../src/cli/models.js';
import { parseCsv } from '../../src/validation/ranges.js';
import { inferdCli } from '../support/cli.js';
import { SHARED_MODELS } from '../support/paths.js';

export const BC_DATA = path.join(SHARED_MODELS, 'breast_cancer', 'data');
export const BC_TRAIN = path.join(BC_DATA, 'train.csv');
export const BC_TEST = path.join(BC_DATA, 'test.csv');
export const BC_MODEL = path.join(SHARED_MODELS, 'breast_cancer', '1', 'model.onnx');

/** The features the shifted copy moves, and how. */
export const SHIFTS: Record<string, (x: number) => number> = {
  mean_radius: (x) => x * 1.3 + 2,
  worst_texture: (x) => x + 8,
  mean_smoothness: (x) => x * 1.25,
};

/** Writes a copy of the breast_cancer test split with SHIFTS applied; returns its path. */
export async function shiftedTestCopy(dir: string, shifts: Record<string, (x: number) => number> = SHIFTS): Promise<string> {
  const records = parseCsv(await readFile(BC_TEST, 'utf8'));
  const header = records[0]!;
  const columns = Object.keys(shifts).map((name) => {
    const index = header.indexOf(name);
    if (index < 0) throw new Error(`no column ${name}`);
    return [index, shifts[name]!] as const;
  });
  const out = [header, ...records.slice(1).map((r) => {
    const row = [...r];
    for (const [i, f] of columns) row[i] = String(f(Number(row[i])));
    return row;
  })];
  const file = path.join(dir, 'shifted.csv');
  await writeFile(file, out.map((r) => r.join(',')).join('\n') + '\n');
  return file;
}

export function tempDir(prefix = 'inferd-drift-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Runs `inferd drift ...` or `inferd models ...` in-process through a real commander program. */
export const runInferd = inferdCli(registerModelsCommand, registerDriftCommand);
