/**
 * The model manager owns every loaded model version. It reads the repository (and the registry,
 * for models the configuration serves from it), loads versions in worker threads, switches
 * traffic to a new version only once it is ready (hot swap with no failed request), drains the
 * versions it replaces, and reports state for health and the repository API. A model that fails
 * to load is recorded with its reason; it never crashes the server, and a version already
 * serving keeps serving.
 *
 * Loading strategies: eager models load when asked (at start, by the API, by polling); lazy
 * ones wait for their first request, which loads them (concurrent first requests share one
 * load), and readiness never waits for them.
 */
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError } from '../config/validate.js';
import { ModelNotFoundError, toInferdError } from '../core/errors.js';
import type { RepositoryEntry } from '../core/types.js';
import type { InputProfile } from '../validation/ranges.js';
import type { ModelConfig } from './config.js';
import { profileFromReference } from './input-ranges.js';
import { ModelVersion, type InferenceObserver } from './model-version.js';
import { ServingTable, type ModelEntry } from './serving-table.js';
import type { RegistryLink } from './registry-link.js';
import { checkModelName, type ModelRepository } from './repository.js';
import { ServedModels, type LoadStrategy, type RegistryModelSpec } from './served.js';

/** One version as a source describes it. */
interface SourceVersion {
  version: string;
  path: string;
  fingerprint: string;
  /** Checks the file before it is loaded (registry artifacts: SHA-256). */
  verify?: () => Promise<unknown>;
  profile: () => Promise<InputProfile | null>;
}

interface SourceModel {
  config: ModelConfig;
  versions: SourceVersion[];
}

export interface ModelManagerOptions {
  observer?: InferenceObserver;
  logger?: Logger;
  /** How long a replaced or unloaded version may take to finish its queued requests. */
  drainDeadlineMs?: number;
  /** Registry models and load strategies (the server's `models:` list). */
  served?: ServedModels;
  /** How registry models are reached; required when `served` names any. */
  registry?: RegistryLink;
  /** Nice value every version's worker threads run at, at least (server.worker_nice); a shadow's may be lower still. */
  workerNice?: number;
}

export interface LoadOptions {
  /**
   * Load versions that failed last time with the same artifact and config. Explicit loads do;
   * polling does not, so a broken model is not retried on every tick until something changes.
   */
  retryFailed?: boolean;
}

/** What the admin API reports per model. */
export interface ServingStatus {
  name: string;
  source: { kind: 'repository'; path: string } | { kind: 'registry'; reference: string; model: string };
  load: LoadStrategy;
  state: ModelEntry['state'];
  /** Waiting for its first request. */
  lazy_pending: boolean;
  versions: Array<{ version: string; state: string; load_ms: number; ranges?: { input: string; mode: string; bound: string; features: number }; out_of_range?: Record<string, number> }>;
  loads: number;
  last_load_ms?: number;
  last_swap?: ModelEntry['lastSwap'];
  failure?: { versions: string[]; reason: string; at: string };
}

const byVersionDesc = (a: ModelVersion, b: ModelVersion) => Number(b.version) - Number(a.version);

export class ModelManager {
  /** What serves now; lookups for the pipeline, health and the admin API. */
  readonly serving = new ServingTable();
  private readonly models = this.serving.entries;
  readonly served: ServedModels;
  /** Nice values asked for versions (model -> version -> nice), kept for versions loaded later. */
  private readonly nices = new Map<string, Map<string, number>>();
  private niceUnsupportedLogged = false;

  constructor(
    readonly repository: ModelRepository,
    private readonly options: ModelManagerOptions = {},
  ) {
    this.served = options.served ?? new ServedModels();
    if (this.served.hasRegistryModels && !options.registry) throw new ConfigError('registry models are configured but no registry is given to the model manager');
  }

  /** Names of every model the server can serve: the repository's and the registry entries'. */
  async names(): Promise<string[]> {
    let onDisk: string[];
    try {
      onDisk = await this.repository.list();
    } catch (error) {
      // A server that serves only from the registry needs no repository directory.
      if (!this.served.hasRegistryModels) throw error;
      onDisk = [];
    }
    const fromRegistry = this.served.registry.map((s) => s.name);
    return [...new Set([...onDisk, ...fromRegistry])].sort();
  }

  /** Loads every model per its strategy (lazy ones wait for a request); failures are recorded, not thrown. */
  async loadAll(): Promise<void> {
    const names = await this.names();
    await Promise.all(names.map((name) => this.start(name).catch(() => undefined)));
  }

  /** Makes a model available per its strategy: loads an eager one, prepares a lazy one. */
  start(name: string): Promise<void> {
    return this.served.strategy(name) === 'lazy' ? this.prepareLazy(name) : this.load(name);
  }

  private entryOf(name: string): ModelEntry {
    let entry = this.models.get(name);
    if (!entry) {
      entry = { name, versions: new Map(), latest: undefined, state: 'LOADING', generation: 0, lazy: this.served.strategy(name) === 'lazy', lazyPending: false, loads: 0 };
      this.models.set(name, entry);
    }
    return entry;
  }

  /**
   * Loads (or reloads) a model from its source. A call made while a load runs queues one more
   * reload after it (shared by every such call), since the running one may have read the source
   * before the change the caller is reacting to.
   */
  load(name: string, options: LoadOptions = {}): Promise<void> {
    if (!this.models.has(name)) {
      try {
        checkModelName(name);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const entry = this.entryOf(name);
    entry.lazyPending = false;
    if (!entry.loading) return this.startLoad(entry, options);
    entry.followUpRetries = entry.followUpRetries === true || (options.retryFailed ?? true);
    if (entry.followUp) return entry.followUp;
    const generation = entry.generation;
    const followUp = entry.loading
      .catch(() => undefined)
      .then(() => {
        const retryFailed = entry.followUpRetries === true;
        entry.followUp = undefined;
        entry.followUpRetries = undefined;
        if (entry.generation !== generation) return undefined;
        return entry.loading ?? this.startLoad(entry, { retryFailed });
      });
    entry.followUp = followUp;
    return followUp;
  }

  private startLoad(entry: ModelEntry, options: LoadOptions): Promise<void> {
    const loading = this.reload(entry, options.retryFailed ?? true).finally(() => {
      if (entry.loading === loading) entry.loading = undefined;
    });
    entry.loading = loading;
    return loading;
  }

  /**
   * Registers a lazy model without loading it: reads which version it would load (cheap: no
   * artifact is opened), so its first request can be attributed to that version.
   */
  async prepareLazy(name: string): Promise<void> {
    const entry = this.entryOf(name);
    entry.lazy = true;
    if (entry.latest || entry.loading) return;
    try {
      const model = await this.read(name);
      const first = model.versions[0];
      if (!first) throw new ConfigError(`model '${name}' has no version to serve`);
      entry.planned = { version: first.version, path: first.path, config: model.config };
      entry.lazyPending = true;
      entry.state = 'UNAVAILABLE';
      entry.reason = undefined;
    } catch (error) {
      entry.state = 'FAILED';
      entry.reason = toInferdError(error).message;
      this.options.logger?.error({ model: name, reason: entry.reason }, 'lazy model cannot be prepared');
      throw error;
    }
  }

  /** Loads a lazy model on its first request; later callers share the load or find it done. */
  ensureLoaded(name: string): Promise<void> {
    const entry = this.models.get(name);
    if (!entry) return Promise.reject(new ModelNotFoundError(name));
    if (entry.latest?.state === 'READY' || !entry.lazyPending) return entry.loading ?? Promise.resolve();
    if (entry.loading) return entry.loading;
    this.options.logger?.info({ model: name }, 'loading lazy model on its first request');
    return this.startLoad(entry, { retryFailed: true }).finally(() => {
      entry.lazyPending = false;
    });
  }

  /** Where a model comes from now: a registry entry wins over a directory of the same name. */
  private async read(name: string): Promise<SourceModel> {
    const spec = this.served.registrySpec(name);
    return spec ? this.readRegistry(spec) : this.readRepository(name);
  }

  private async readRepository(name: string): Promise<SourceModel> {
    const model = await this.repository.read(name);
    const ranges = model.config.input_ranges;
    if (ranges && ranges.reference === undefined) {
      throw new ConfigError(`model '${name}': input_ranges needs 'reference' (a CSV of reference data) for a model served from the repository`);
    }
    const dir = join(this.repository.root, name);
    const versions: SourceVersion[] = [];
    for (const { version, path } of model.versions) {
      versions.push({
        version,
        path,
        fingerprint: await ModelVersion.fingerprintOf(path, model.config),
        profile: async () => (ranges ? profileFromReference(dir, ranges) : null),
      });
    }
    return { config: model.config, versions };
  }

  private async readRegistry(spec: RegistryModelSpec): Promise<SourceModel> {
    const link = this.options.registry!;
    let registry;
    let version;
    try {
      registry = await link.get();
      version = await registry.resolve(spec.reference);
      link.noteSuccess();
    } catch (error) {
      if (toInferdError(error).code === 'UNAVAILABLE') link.noteFailure(error);
      throw error;
    }
    const reg = registry;
    const v = version;
    const ranges = spec.config.input_ranges;
    const sha256 = v.artifact.sha256;
    return {
      config: spec.config,
      versions: [
        {
          version: String(v.version),
          path: reg.artifacts.pathOf(sha256),
          // Content-addressed: the hash is the artifact's identity.
          fingerprint: `sha256:${sha256}:${JSON.stringify(spec.config)}`,
          verify: () => reg.artifacts.verify(sha256, `model '${v.name}' version ${v.version}`),
          profile: async () => {
            if (!ranges) return null;
            if (ranges.reference !== undefined) return profileFromReference(process.cwd(), ranges);
            return v.hasProfile ? reg.getProfile(v.name, v.version) : null;
          },
        },
      ],
    };
  }

  private async reload(entry: ModelEntry, retryFailed: boolean): Promise<void> {
    const log = this.options.logger;
    if (entry.versions.size === 0) entry.state = 'LOADING';
    const attempted: SourceVersion[] = [];
    try {
      const model = await this.read(entry.name);
      const next = new Map<string, ModelVersion>();
      const reused: Array<{ current: ModelVersion; source: SourceVersion }> = [];
      for (const source of model.versions) {
        const current = entry.versions.get(source.version);
        if (current && current.state === 'READY' && current.fingerprint === source.fingerprint) {
          next.set(source.version, current);
          reused.push({ current, source });
          continue;
        }
        attempted.push(source);
      }
      const failed = entry.failure;
      if (!retryFailed && failed && attempted.length > 0 && attempted.every((a) => failed.fingerprints.includes(a.fingerprint))) {
        // The same artifacts failed before: wait for a change or an explicit load.
        if (entry.versions.size === 0) entry.state = 'FAILED';
        return;
      }
      // A profile stored after the version loaded takes effect without reloading it.
      for (const { current, source } of reused) {
        if (current.config.input_ranges) current.setProfile(await source.profile());
      }
      const fresh: ModelVersion[] = [];
      for (const source of attempted) {
        await source.verify?.();
        const v = new ModelVersion(entry.name, source.version, source.path, model.config, this.options.observer, this.options.logger?.level, {
          fingerprint: source.fingerprint,
          profile: await source.profile(),
          nice: this.niceOf(entry.name, source.version),
        });
        fresh.push(v);
        next.set(source.version, v);
      }
      entry.loads += fresh.length;
      // Load every new version before any traffic moves: a failure leaves the old set serving.
      const started = performance.now();
      const results = await Promise.allSettled(fresh.map((v) => v.load()));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) {
        await Promise.all(fresh.filter((v) => v.state === 'READY').map((v) => v.unload(0)));
        throw rejected.reason;
      }
      const replaced = [...entry.versions.values()].filter((v) => ![...next.values()].includes(v));
      const before = entry.latest?.version;
      entry.versions = next;
      entry.latest = [...next.values()].sort(byVersionDesc)[0];
      entry.state = 'READY';
      entry.reason = undefined;
      entry.failure = undefined;
      entry.planned = undefined;
      if (fresh.length > 0) entry.lastLoadMs = performance.now() - started;
      for (const v of fresh) {
        log?.info({ model: v.name, version: v.version, loadMs: Math.round(v.loadMs) }, 'model version ready');
        if (v.config.input_ranges && !v.ranges) log?.warn({ model: v.name, version: v.version }, 'input_ranges configured but the version has no input profile; values are not checked');
      }
      const after = entry.latest?.version;
      if (before !== undefined && after !== undefined && before !== after) {
        entry.lastSwap = { from: before, to: after, at: new Date().toISOString() };
        log?.info({ model: entry.name, from: before, to: after }, 'traffic switched to the new version');
      }
      await Promise.all(
        replaced.map(async (v) => {
          await v.unload(this.options.drainDeadlineMs);
          log?.info({ model: v.name, version: v.version }, 'model version unloaded');
        }),
      );
    } catch (error) {
      const reason = toInferdError(error).message;
      if (error instanceof ModelNotFoundError && entry.versions.size === 0 && !this.served.registrySpec(entry.name)) {
        // A name that is in no source (a mistyped load): nothing to remember, nothing to wait for.
        if (this.models.get(entry.name) === entry) this.models.delete(entry.name);
        throw error;
      }
      entry.reason = reason;
      entry.failure = { versions: attempted.map((a) => a.version), fingerprints: attempted.map((a) => a.fingerprint), reason, at: new Date().toISOString() };
      if (entry.versions.size === 0) entry.state = 'FAILED';
      const serving = [...entry.versions.keys()];
      if (serving.length > 0) {
        log?.error({ model: entry.name, versions: entry.failure.versions, reason, serving }, 'model version failed to load; the serving version keeps serving');
      } else {
        log?.error({ model: entry.name, versions: entry.failure.versions, reason }, 'model failed to load');
      }
      throw error;
    }
  }

  async unload(name: string, deadlineMs = this.options.drainDeadlineMs): Promise<void> {
    const entry = this.models.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    entry.generation++;
    entry.lazyPending = false;
    if (entry.loading) await entry.loading.catch(() => undefined);
    const versions = [...entry.versions.values()];
    entry.versions = new Map();
    entry.latest = undefined;
    entry.state = 'UNAVAILABLE';
    await Promise.all(versions.map((v) => v.unload(deadlineMs)));
  }

  /** Unloads a model and forgets it, as when its directory leaves the repository. */
  async remove(name: string): Promise<void> {
    await this.unload(name);
    const entry = this.models.get(name);
    if (entry && !entry.loading && entry.versions.size === 0) this.models.delete(name);
  }

  /**
   * The nice value a version's worker threads run at (Linux): traffic management lowers a shadow
   * version's so the callers' threads come first when cores are contended, and sets it back to 0
   * when the version stops being a shadow. Kept for the version if it loads (or reloads) later.
   * Never throws: a failure is logged and the version keeps serving.
   */
  async setNice(model: string, version: string, nice: number): Promise<void> {
    const byVersion = this.nices.get(model) ?? new Map<string, number>();
    if (nice === 0) byVersion.delete(version);
    else byVersion.set(version, nice);
    if (byVersion.size === 0) this.nices.delete(model);
    else this.nices.set(model, byVersion);
    const loaded = this.models.get(model)?.versions.get(version);
    if (loaded === undefined) return;
    try {
      const states = await loaded.setNice(Math.max(nice, this.options.workerNice ?? 0));
      if (states.some((s) => !s.supported) && !this.niceUnsupportedLogged) {
        this.niceUnsupportedLogged = true;
        this.options.logger?.info({ platform: process.platform }, 'worker thread priorities are not supported on this platform; shadow versions run at normal priority');
      } else if (states.length > 0) {
        this.options.logger?.info({ model, version, nice, threads: states.map((s) => s.tid) }, 'model version worker priority set');
      }
    } catch (error) {
      this.options.logger?.warn({ model, version, nice, err: toInferdError(error).message }, 'setting the worker priority of a model version failed');
    }
  }

  private niceOf(model: string, version: string): number {
    return Math.max(this.nices.get(model)?.get(version) ?? 0, this.options.workerNice ?? 0);
  }

  /** Whether a registered model's version is serving under any name (deletion guard). */
  isServingRegistryVersion(model: string, version: number): boolean {
    for (const spec of this.served.servedFrom(model)) {
      if (this.models.get(spec.name)?.versions.has(String(version))) return true;
    }
    return false;
  }

  async index(readyOnly = false): Promise<RepositoryEntry[]> {
    const names = new Set([...(await this.names()), ...this.models.keys()]);
    const out: RepositoryEntry[] = [];
    for (const name of [...names].sort()) {
      const entry = this.models.get(name);
      if (!entry) {
        if (!readyOnly) out.push({ name, state: 'UNAVAILABLE', reason: 'not loaded' });
        continue;
      }
      if (entry.versions.size === 0) {
        if (readyOnly) continue;
        const reason = entry.lazyPending ? 'not loaded yet: loads on its first request' : entry.reason;
        out.push({ name, state: entry.state === 'FAILED' ? 'UNAVAILABLE' : entry.state, ...(reason ? { reason } : {}) });
        continue;
      }
      const failure = entry.failure;
      // A reload that failed without naming a version (source unreadable) is told on the serving rows.
      const note = failure && failure.versions.length === 0 ? `the last reload failed (${failure.reason}); this version keeps serving` : undefined;
      for (const v of entry.versions.values()) {
        if (readyOnly && v.state !== 'READY') continue;
        const reason = v.unhealthy ?? v.reason ?? note;
        const state = v.state === 'FAILED' || v.unhealthy !== undefined ? 'UNAVAILABLE' : v.state;
        out.push({ name, version: v.version, state, ...(reason ? { reason } : {}) });
      }
      if (!readyOnly && failure) {
        for (const version of failure.versions) {
          if (!entry.versions.has(version)) out.push({ name, version, state: 'UNAVAILABLE', reason: failure.reason });
        }
      }
    }
    return out;
  }

  /** Per-model serving state for the admin API. */
  async status(): Promise<ServingStatus[]> {
    const names = new Set([...(await this.names().catch((): string[] => [])), ...this.models.keys()]);
    return [...names].sort().map((name) => this.statusOf(name));
  }

  statusOf(name: string): ServingStatus {
    const spec = this.served.registrySpec(name);
    const entry = this.models.get(name);
    const source: ServingStatus['source'] = spec
      ? { kind: 'registry', reference: spec.reference, model: spec.model }
      : { kind: 'repository', path: join(this.repository.root, name) };
    const out: ServingStatus = {
      name,
      source,
      load: this.served.strategy(name),
      state: entry ? entry.state : 'UNAVAILABLE',
      lazy_pending: entry?.lazyPending ?? false,
      versions: [...(entry?.versions.values() ?? [])].sort(byVersionDesc).map((v) => {
        const ranges = v.ranges;
        return {
          version: v.version,
          state: v.state,
          load_ms: Math.round(v.loadMs),
          ...(ranges ? { ranges: { input: ranges.input, mode: ranges.mode, bound: ranges.bound, features: ranges.profile.features.length } } : {}),
          ...(v.outOfRange.size > 0 ? { out_of_range: Object.fromEntries(v.outOfRange) } : {}),
        };
      }),
      loads: entry?.loads ?? 0,
    };
    if (entry?.lastLoadMs !== undefined) out.last_load_ms = Math.round(entry.lastLoadMs);
    if (entry?.lastSwap) out.last_swap = entry.lastSwap;
    if (entry?.failure) out.failure = { versions: entry.failure.versions, reason: entry.failure.reason, at: entry.failure.at };
    else if (entry?.reason) out.failure = { versions: [], reason: entry.reason, at: '' };
    return out;
  }

  /** Unloads everything: queued requests finish first (bounded by the drain deadline). */
  /** Unloads everything: queued requests finish first, bounded by `deadlineMs` (default: the drain deadline). */
  async close(deadlineMs?: number): Promise<void> {
    await Promise.all([...this.models.keys()].map((name) => this.unload(name, deadlineMs).catch(() => undefined)));
  }
}
