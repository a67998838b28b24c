/**
 * Shared test fixtures: the real reference models, and the two registry back ends (a SQLite
 * file per test, a fresh database per test on one real PostgreSQL server per test file).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openRegistry, type OpenRegistryOptions } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const modelsDir = path.resolve(repoRoot, '..', 'shared', 'models');
export const BREAST_CANCER = path.join(modelsDir, 'breast_cancer', '1', 'model.onnx');
export const DIGITS = path.join(modelsDir, 'digits', '1', 'model.onnx');
export const TEXT_ENCODER = path.join(modelsDir, 'text_encoder_tiny', '1', 'model.onnx');
export const BREAST_CANCER_TRAIN = path.join(modelsDir, 'breast_cancer', 'data', 'train.csv');
export const BREAST_CANCER_TEST = path.join(modelsDir, 'breast_cancer', 'data', 'test.csv');
export const DIGITS_TRAIN = path.join(modelsDir, 'digits', 'data', 'train.csv');

export { retrained as retrainedCopy } from '../support/models.js';

export interface Fixture {
  url: string;
  /** Artifacts go to `<home>/artifacts`. */
  home: string;
  /** Scratch directory for the test's own files. */
  dir: string;
  open(options?: OpenRegistryOptions): Promise<Registry>;
  cleanup(): Promise<void>;
}

export interface Backend {
  kind: 'sqlite' | 'postgres';
  start(): Promise<void>;
  stop(): Promise<void>;
  fixture(): Promise<Fixture>;
}

function makeFixture(url: string, dir: string): Fixture {
  const opened: Registry[] = [];
  return {
    url,
    home: dir,
    dir,
    async open(options: OpenRegistryOptions = {}) {
      const registry = await openRegistry(url, { home: dir, actor: 'tester', ...options });
      opened.push(registry);
      return registry;
    },
    async cleanup() {
      for (const registry of opened) await registry.close().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function sqliteBackend(): Backend {
  return {
    kind: 'sqlite',
    async start() {},
    async stop() {},
    async fixture() {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-registry-'));
      return makeFixture(`sqlite:${path.join(dir, 'registry.db')}`, dir);
    },
  };
}

export function postgresBackend(): Backend {
  let server: PostgresServer | undefined;
  let counter = 0;
  return {
    kind: 'postgres',
    async start() {
      server = await startPostgres();
    },
    async stop() {
      await server?.stop();
    },
    async fixture() {
      if (server === undefined) throw new Error('postgres backend not started');
      const dir = await mkdtemp(path.join(os.tmpdir(), 'inferd-registry-'));
      counter += 1;
      const url = await server.createDatabase(`registry_${process.pid}_${counter}`);
      return makeFixture(url, dir);
    },
  };
}

export const BACKENDS: Backend[] = [sqliteBackend(), postgresBackend()];
