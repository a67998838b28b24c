import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isRemote, parseRemote, redactLocation } from '../../src/storage/location.js';
import { progressLine } from '../../src/storage/progress.js';
import { safeRelativePath } from '../../src/storage/sources.js';

describe('storage locations', () => {
  it('parses s3://bucket/prefix with a trailing slash added', () => {
    expect(parseRemote('s3://models/prod/repo')).toEqual({ kind: 's3', bucket: 'models', prefix: 'prod/repo/', url: 's3://models/prod/repo/' });
    expect(parseRemote('s3://models')).toMatchObject({ bucket: 'models', prefix: '' });
  });

  it('refuses malformed buckets and dot segments, naming the problem', () => {
    expect(() => parseRemote('s3://A_b/x')).toThrow(/not a valid S3 bucket name/);
    expect(() => parseRemote('s3://models/a/../b')).toThrow(/'\.' or '\.\.'/);
    expect(() => parseRemote('ftp://x/y')).toThrow(/neither s3:\/\/bucket\/prefix nor an http\(s\):\/\/ URL/);
  });

  it('tells remote locations from directories', () => {
    expect(isRemote('s3://b/p')).toBe(true);
    expect(isRemote('https://h/x.onnx')).toBe(true);
    expect(isRemote('./models')).toBe(false);
  });

  it('hides credentials and presigned query strings in logs', () => {
    expect(redactLocation('https://user:pw@h.example/a/model.onnx?X-Amz-Signature=abc')).toBe('https://h.example/a/model.onnx');
  });

  it('keeps bucket keys inside the repository', () => {
    expect(safeRelativePath('m/1/model.onnx')).toBe(true);
    for (const bad of ['../x', 'm/../../x', '/abs', 'm/.hidden', 'm//x', 'a\\b']) expect(safeRelativePath(bad)).toBe(false);
  });
});

describe('the progress line', () => {
  it('prints only on a terminal and ends each file with a newline', () => {
    const plain = new PassThrough() as unknown as NodeJS.WriteStream;
    expect(progressLine(plain)).toBeUndefined();
    const tty = new PassThrough() as unknown as NodeJS.WriteStream & { isTTY: boolean };
    tty.isTTY = true;
    let text = '';
    (tty as unknown as PassThrough).on('data', (d: Buffer) => (text += d.toString()));
    const p = progressLine(tty)!;
    p('m/1/model.onnx', 5_000_000, 10_000_000);
    p('m/1/model.onnx', 10_000_000, 10_000_000);
    expect(text).toMatch(/m\/1\/model\.onnx: 5\.0\/10\.0 MB 50%/);
    expect(text).toMatch(/10\.0\/10\.0 MB 100% .*MB\/s\n$/);
  });
});
