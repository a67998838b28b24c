/** Helpers for the serving-lifecycle tests: registries in temporary homes, load loops, golden data. */
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRegistry } from '../../src/registry/open.js';
import type { Registry } from '../../src/registry/registry.js';
import { SHARED_MODELS } from '../support/paths.js';

export { BC_ONNX, BC_TRAIN, DIGITS_ONNX, retrained } from '../support/models.js';
export { request } from '../support/http.js';

interface GoldenTensor {
  shape: number[];
  datatype: string;
  data: number[];
}
const golden = JSON.parse(readFileSync(join(SHARED_MODELS, 'breast_cancer', 'golden.json'), 'utf8')) as {
  inputs: Record<string, GoldenTensor>;
  outputs: Record<string, GoldenTensor>;
};

/** The 8 golden rows of breast_cancer as an OIP request, and the labels a correct model gives. */
export const BC_REQUEST = { inputs: [{ name: 'features', datatype: 'FP32', shape: golden.inputs.features!.shape, data: golden.inputs.features!.data }] };
export const BC_LABELS = golden.outputs.label!.data;
/** One golden row (30 features). */
export const BC_ROW = golden.inputs.features!.data.slice(0, 30);

/** The serving config a registry breast_cancer entry uses in these tests. */
export const BC_SERVING_CONFIG = {
  max_batch_size: 64,
  inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
  dynamic_batching: { max_queue_delay_microseconds: 200 },
  warmup: [{ batch_size: 1, count: 2, inputs: { features: 'random' } }],
};

export interface TempRegistry {
  url: string;
  home: string;
  registry: Registry;
  cleanup(): Promise<void>;
}

/** A SQLite registry in a fresh directory (artifacts beside it). */
export async function sqliteRegistry(): Promise<TempRegistry> {
  const home = await mkdtemp(join(tmpdir(), 'inferd-serving-'));
  const url = `sqlite:${join(home, 'registry.db')}`;
  const registry = await openRegistry(url, { home, actor: 'tester' });
  return {
    url,
    home,
    registry,
    async cleanup() {
      await registry.close().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL registry in a fresh database of `server`, artifacts in a fresh directory. */
export async function postgresRegistry(createDatabase: (name: string) => Promise<string>, db: string): Promise<TempRegistry> {
  const home = await mkdtemp(join(tmpdir(), 'inferd-serving-'));
  const url = await createDatabase(db);
  const registry = await openRegistry(url, { home, actor: 'tester' });
  return {
    url,
    home,
    registry,
    async cleanup() {
      await registry.close().catch(() => undefined);
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** Flips bytes in the middle of a registered artifact, as disk corruption would. */
export async function corrupt(registry: Registry, sha256: string): Promise<void> {
  const file = registry.artifacts.pathOf(sha256);
  const bytes = await readFile(file);
  for (let i = 100; i < 132; i++) bytes[i] = bytes[i]! ^ 0xff;
  await chmod(file, 0o644);
  await writeFile(file, bytes);
}

export interface LoadResult {
  ok: number;
  failed: number;
  /** Status and message of the first failures. */
  errors: string[];
  /** Answers per model_version. */
  versions: Map<string, number>;
  /** Answers whose labels differ from the golden ones. */
  wrong: number;
}

/**
 * Keeps `concurrency` requests in flight against breast_cancer's infer route until stopped;
 * every answer is checked (status, labels against the golden ones, version reported).
 */
export function continuousLoad(url: string, model: string, concurrency: number): { stop(): Promise<LoadResult>; result: LoadResult } {
  const result: LoadResult = { ok: 0, failed: 0, errors: [], versions: new Map(), wrong: 0 };
  let running = true;
  const body = JSON.stringify(BC_REQUEST);
  const loop = async () => {
    while (running) {
      try {
        const r = await fetch(`${url}/v2/models/${model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await r.text();
        if (r.status !== 200) {
          result.failed++;
          if (result.errors.length < 5) result.errors.push(`${r.status} ${text}`);
          continue;
        }
        const answer = JSON.parse(text) as { model_version: string; outputs: Array<{ name: string; data: number[] }> };
        result.ok++;
        result.versions.set(answer.model_version, (result.versions.get(answer.model_version) ?? 0) + 1);
        const labels = answer.outputs.find((o) => o.name === 'label')?.data;
        if (!labels || labels.some((l, i) => Number(l) !== BC_LABELS[i])) result.wrong++;
      } catch (error) {
        result.failed++;
        if (result.errors.length < 5) result.errors.push(String(error));
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    result,
    async stop() {
      running = false;
      await Promise.all(loops);
      return result;
    },
  };
}

/** Polls `check` until it returns a value, failing after `timeoutMs` (a bound, not a measurement). */
export async function until<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The version `GET /v2/models/{m}` lists now (one version served at a time here). */
export async function servedVersion(url: string, model: string): Promise<string | undefined> {
  const r = await fetch(`${url}/v2/models/${model}`);
  if (r.status !== 200) return undefined;
  const meta = (await r.json()) as { versions: string[] };
  return meta.versions.length === 1 ? meta.versions[0] : undefined;
}

