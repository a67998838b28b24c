/**
 * The model manager owns every loaded model version. It reads the repository, loads versions
 * in worker threads, switches traffic to a new version only once it is ready (hot swap with no
 * failed request), drains the versions it replaces, and reports state for health and the
 * repository API. A model that fails to load is recorded with its reason; it never crashes the
 * server, and a version already serving keeps serving.
 */
import type { Logger } from 'pino';
import { ModelNotFoundError, UnavailableError, toInferdError } from '../core/errors.js';
import type { RepositoryEntry } from '../core/types.js';
import { ModelVersion, type InferenceObserver } from './model-version.js';
import type { ModelRepository } from './repository.js';

interface ModelEntry {
  name: string;
  /** Serving versions, by version string. */
  versions: Map<string, ModelVersion>;
  /** The highest ready version: what a request without a version gets. */
  latest: ModelVersion | undefined;
  state: 'LOADING' | 'READY' | 'UNAVAILABLE' | 'FAILED';
  reason?: string;
  /** One load at a time per model; concurrent callers share it. */
  loading?: Promise<void>;
}

export interface ModelManagerOptions {
  observer?: InferenceObserver;
  logger?: Logger;
  /** How long a replaced or unloaded version may take to finish its queued requests. */
  drainDeadlineMs?: number;
}

export class ModelManager {
  private readonly models = new Map<string, ModelEntry>();

  constructor(
    readonly repository: ModelRepository,
    private readonly options: ModelManagerOptions = {},
  ) {}

  /** Loads every model in the repository; failures are recorded, not thrown. */
  async loadAll(): Promise<void> {
    const names = await this.repository.list();
    await Promise.all(names.map((name) => this.load(name).catch(() => undefined)));
  }

  /** Loads (or reloads) a model from the repository. Concurrent calls for one model share one load. */
  load(name: string): Promise<void> {
    let entry = this.models.get(name);
    if (!entry) {
      entry = { name, versions: new Map(), latest: undefined, state: 'LOADING' };
      this.models.set(name, entry);
    }
    if (entry.loading) return entry.loading;
    const e = entry;
    e.loading = this.reload(e).finally(() => {
      e.loading = undefined;
    });
    return e.loading;
  }

  private async reload(entry: ModelEntry): Promise<void> {
    const log = this.options.logger;
    if (entry.versions.size === 0) entry.state = 'LOADING';
    try {
      const model = await this.repository.read(entry.name);
      const next = new Map<string, ModelVersion>();
      const fresh: ModelVersion[] = [];
      for (const { version, path } of model.versions) {
        const current = entry.versions.get(version);
        if (current && current.state === 'READY' && current.fingerprint === (await ModelVersion.fingerprintOf(path, model.config))) {
          next.set(version, current);
          continue;
        }
        const v = new ModelVersion(entry.name, version, path, model.config, this.options.observer, this.options.logger?.level);
        fresh.push(v);
        next.set(version, v);
      }
      // Load every new version before any traffic moves: a failure leaves the old set serving.
      await Promise.all(fresh.map((v) => v.load()));
      const replaced = [...entry.versions.values()].filter((v) => ![...next.values()].includes(v));
      entry.versions = next;
      entry.latest = [...next.values()].sort((a, b) => Number(b.version) - Number(a.version))[0];
      entry.state = 'READY';
      entry.reason = undefined;
      for (const v of fresh) log?.info({ model: v.name, version: v.version, loadMs: Math.round(v.loadMs) }, 'model version ready');
      await Promise.all(
        replaced.map(async (v) => {
          await v.unload(this.options.drainDeadlineMs);
          log?.info({ model: v.name, version: v.version }, 'model version unloaded');
        }),
      );
    } catch (error) {
      const reason = toInferdError(error).message;
      entry.reason = reason;
      if (entry.versions.size === 0) entry.state = 'FAILED';
      log?.error({ model: entry.name, reason }, 'model failed to load');
      throw error;
    }
  }

  async unload(name: string): Promise<void> {
    const entry = this.models.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    if (entry.loading) await entry.loading.catch(() => undefined);
    const versions = [...entry.versions.values()];
    entry.versions = new Map();
    entry.latest = undefined;
    entry.state = 'UNAVAILABLE';
    await Promise.all(versions.map((v) => v.unload(this.options.drainDeadlineMs)));
  }

  /** The version that serves a request, or an error saying why there is none. */
  resolve(name: string, version?: string): ModelVersion {
    const entry = this.models.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    if (version === undefined || version === '') {
      const latest = entry.latest;
      if (latest && latest.state === 'READY') return latest;
      if (entry.state === 'FAILED') throw new UnavailableError(`model '${name}' failed to load: ${entry.reason}`);
      throw new UnavailableError(`model '${name}' is ${entry.state.toLowerCase()}`, 1);
    }
    const v = entry.versions.get(version);
    if (!v) {
      if (entry.state === 'LOADING') throw new UnavailableError(`model '${name}' is loading`, 1);
      throw new ModelNotFoundError(name, version);
    }
    return v;
  }

  /** Like resolve, but returns a version in any state (for metadata and readiness). */
  find(name: string, version?: string): { entry: ModelEntry; version: ModelVersion | undefined } {
    const entry = this.models.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    if (version === undefined || version === '') return { entry, version: entry.latest };
    const v = entry.versions.get(version);
    if (!v) throw new ModelNotFoundError(name, version);
    return { entry, version: v };
  }

  isReady(name: string, version?: string): boolean {
    const { entry, version: v } = this.find(name, version);
    return entry.state === 'READY' && v !== undefined && v.state === 'READY';
  }

  /** True when every model known to the manager is serving. */
  allReady(): boolean {
    for (const e of this.models.values()) if (e.state !== 'READY' && e.state !== 'UNAVAILABLE') return false;
    return true;
  }

  versionsOf(name: string): ModelVersion[] {
    return [...(this.models.get(name)?.versions.values() ?? [])];
  }

  loaded(): ModelVersion[] {
    return [...this.models.values()].flatMap((e) => [...e.versions.values()]);
  }

  failures(): Array<{ name: string; reason: string }> {
    return [...this.models.values()].filter((e) => e.reason !== undefined).map((e) => ({ name: e.name, reason: e.reason! }));
  }

  async index(readyOnly = false): Promise<RepositoryEntry[]> {
    const names = new Set([...(await this.repository.list()), ...this.models.keys()]);
    const out: RepositoryEntry[] = [];
    for (const name of [...names].sort()) {
      const entry = this.models.get(name);
      if (!entry) {
        if (!readyOnly) out.push({ name, state: 'UNAVAILABLE', reason: 'not loaded' });
        continue;
      }
      if (entry.versions.size === 0) {
        if (!readyOnly) out.push({ name, state: entry.state === 'FAILED' ? 'UNAVAILABLE' : entry.state, ...(entry.reason ? { reason: entry.reason } : {}) });
        continue;
      }
      for (const v of entry.versions.values()) {
        if (readyOnly && v.state !== 'READY') continue;
        out.push({ name, version: v.version, state: v.state === 'FAILED' ? 'UNAVAILABLE' : v.state, ...(v.reason ? { reason: v.reason } : {}) });
      }
    }
    return out;
  }

  /** Unloads everything: queued requests finish first (bounded by the drain deadline). */
  async close(): Promise<void> {
    await Promise.all([...this.models.keys()].map((name) => this.unload(name).catch(() => undefined)));
  }
}
