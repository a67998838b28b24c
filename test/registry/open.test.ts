import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InferdError } from '../../src/core/errors.js';
import { parseReference } from '../../src/registry/names.js';
import { defaultRegistryUrl, openRegistry } from '../../src/registry/open.js';
import { bumpSemver, compareSemver, proposeSemver } from '../../src/registry/semver.js';
import type { Signature } from '../../src/registry/types.js';
import { BREAST_CANCER } from './fixtures.js';

describe('openRegistry', () => {
  let dir: string;
  const saved = { home: process.env['INFERD_HOME'], registry: process.env['INFERD_REGISTRY'] };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-open-'));
  });
  afterEach(async () => {
    for (const [key, value] of [
      ['INFERD_HOME', saved.home],
      ['INFERD_REGISTRY', saved.registry],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('defaults to a SQLite file and artifacts under $INFERD_HOME', async () => {
    process.env['INFERD_HOME'] = path.join(dir, 'home');
    delete process.env['INFERD_REGISTRY'];
    expect(defaultRegistryUrl()).toBe(`sqlite:${path.join(dir, 'home', 'registry.db')}`);
    const registry = await openRegistry();
    try {
      const v = await registry.register('bc', BREAST_CANCER);
      expect((await stat(path.join(dir, 'home', 'registry.db'))).isFile()).toBe(true);
      const file = path.join(dir, 'home', 'artifacts', 'sha256', v.artifact.sha256.slice(0, 2), v.artifact.sha256, 'model.onnx');
      expect((await registry.resolveArtifact('bc')).path).toBe(file);
    } finally {
      await registry.close();
    }
  });

  it('accepts sqlite:///absolute paths and refuses unknown schemes', async () => {
    const registry = await openRegistry(`sqlite://${path.join(dir, 'abs.db')}`);
    await registry.close();
    expect((await stat(path.join(dir, 'abs.db'))).isFile()).toBe(true);
    for (const url of ['mysql://localhost/x', 'sqlite:', '/plain/path.db']) {
      await expect(openRegistry(url)).rejects.toSatisfy((e: unknown) => e instanceof InferdError && e.code === 'INVALID_ARGUMENT');
    }
  });
});

describe('semantic versions and references', () => {
  const sig = (width: number): Signature => ({
    inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, width] }],
    outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 1] }],
  });

  it('orders labels by semver precedence', () => {
    const sorted = ['1.0.0', '1.0.0-alpha', '1.0.0-alpha.1', '1.0.0-beta', '1.0.0-alpha.beta', '1.0.0-beta.11', '1.0.0-beta.2', '1.0.0-rc.1', '0.9.9', '10.0.0', '2.0.0'];
    expect([...sorted].sort(compareSemver)).toEqual([
      '0.9.9',
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '2.0.0',
      '10.0.0',
    ]);
    expect(bumpSemver('1.4.2-rc.1', 'patch')).toBe('1.4.3');
    expect(() => compareSemver('1.0', '1.0.0')).toThrow('not a semantic version');
  });

  it('proposes major for a new signature, minor otherwise', () => {
    expect(proposeSemver(undefined, undefined, sig(3))).toBe('1.0.0');
    expect(proposeSemver({ signature: sig(3) }, '1.2.3', sig(3))).toBe('1.3.0');
    expect(proposeSemver({ signature: sig(3) }, '1.2.3', sig(4))).toBe('2.0.0');
    const renamed: Signature = { ...sig(3), outputs: [{ name: 'z', datatype: 'FP32', shape: [-1, 1] }] };
    expect(proposeSemver({ signature: sig(3) }, '1.2.3', renamed)).toBe('2.0.0');
    const retyped: Signature = { ...sig(3), inputs: [{ name: 'x', datatype: 'FP64', shape: [-1, 3] }] };
    expect(proposeSemver({ signature: sig(3) }, '1.2.3', retyped)).toBe('2.0.0');
  });

  it('parses references', () => {
    expect(parseReference('fraud')).toEqual({ name: 'fraud', selector: { kind: 'latest' } });
    expect(parseReference('fraud@latest')).toEqual({ name: 'fraud', selector: { kind: 'latest' } });
    expect(parseReference('fraud@12')).toEqual({ name: 'fraud', selector: { kind: 'version', version: 12 } });
    expect(parseReference('fraud@STAGING')).toEqual({ name: 'fraud', selector: { kind: 'stage', stage: 'Staging' } });
    expect(parseReference('fraud@champion')).toEqual({ name: 'fraud', selector: { kind: 'alias', alias: 'champion' } });
    for (const bad of ['fraud@0', 'fraud@', '@champion', 'a/b@1', 'fraud@cham/pion']) expect(() => parseReference(bad), bad).toThrow(InferdError);
  });
});
