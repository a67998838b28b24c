import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CsvSplitter } from '../../src/monitoring/csv-stream.js';
import { parseCsvTable, readTable } from '../../src/monitoring/dataset.js';
import { parseCsv } from '../../src/validation/ranges.js';
import { BC_TRAIN, tempDir } from './support.js';

describe('reading data', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('splits CSV the same whatever the chunking (quotes, doubled quotes, CRLF, newlines in fields, BOM)', () => {
    const text = '\ufeffa,"b ""q""",c\r\n1,"x, y",3\r\n"multi\nline",,"end"""\n4,5,6';
    const expected = parseCsv(text);
    for (const size of [1, 2, 3, 5, 7, 1000]) {
      const records: string[][] = [];
      const splitter = new CsvSplitter((r) => records.push(r));
      for (let i = 0; i < text.length; i += size) splitter.feed(text.slice(i, i + size));
      splitter.end();
      expect(records, `chunks of ${size}`).toEqual(expected);
    }
    const open = new CsvSplitter(() => undefined);
    open.feed('a\n"unterminated');
    expect(() => open.end()).toThrow(/ends inside a quoted field/);
  });

  it('streams a CSV into the same columns as parsing it whole, with progress over both passes', async () => {
    const progress: Array<[number, number]> = [];
    const streamed = await readTable(BC_TRAIN, (read, total) => progress.push([read, total]));
    const whole = parseCsvTable(await readFile(BC_TRAIN, 'utf8'));
    expect(streamed).toEqual(whole);
    expect(progress.at(-1)![0]).toBe(progress.at(-1)![1]);
  });

  it('types columns, keeps missing cells, and names bad files', async () => {
    const file = path.join(dir, 'mixed.csv');
    await writeFile(file, 'x,colour,y\n1,red,\n2.5,,NaN\n,blue,3\n');
    const table = await readTable(file);
    expect(table.rows).toBe(3);
    expect(table.columns.map((c) => c.kind)).toEqual(['numeric', 'string', 'numeric']);
    expect(Array.from(table.columns[0]!.values as Float64Array)).toEqual([1, 2.5, NaN]);
    expect(table.columns[1]!.values).toEqual(['red', null, 'blue']);
    const ragged = path.join(dir, 'ragged.csv');
    await writeFile(ragged, 'a,b\n1,2\n3\n');
    await expect(readTable(ragged)).rejects.toThrow(/line 3 has 1 fields, the header has 2/);
    const twice = path.join(dir, 'twice.csv');
    await writeFile(twice, 'a,a\n1,2\n');
    await expect(readTable(twice)).rejects.toThrow(/the column 'a' twice/);
    await expect(readTable(path.join(dir, 'data.parquet'))).rejects.toThrow(/unknown data format '.parquet'/);
  });
});
