/**
 * What is serving now: every model the manager knows, its serving versions and its state.
 * Lookups only; nothing here loads, swaps or unloads (that is the manager's job, manager.ts).
 * The request pipeline resolves versions here; health, metadata and the admin API read it.
 * No lookup starts a lazy load: only an inference request does (pipeline/policies/resolve.ts).
 */
import { ModelNotFoundError, UnavailableError } from '../core/errors.js';
import type { ModelConfig } from './config.js';
import type { ModelVersion } from './model-version.js';

export interface LoadFailure {
  /** The versions that were being loaded (empty when the source could not be read). */
  versions: string[];
  fingerprints: string[];
  reason: string;
  at: string;
}

export interface ModelEntry {
  name: string;
  /** Serving versions, by version string. */
  versions: Map<string, ModelVersion>;
  /** The highest ready version: what a request without a version gets. */
  latest: ModelVersion | undefined;
  state: 'LOADING' | 'READY' | 'UNAVAILABLE' | 'FAILED';
  reason?: string;
  /** One load at a time per model; concurrent callers share it. */
  loading?: Promise<void>;
  /** A reload asked for while one runs: it starts when that one ends, shared by every asker. */
  followUp?: Promise<void>;
  /** Whether some asker of the follow-up wants failed artifacts retried. */
  followUpRetries?: boolean;
  /** Bumped by unload, so a reload queued before it does not bring the model back. */
  generation: number;
  lazy: boolean;
  /** A lazy model that has not been loaded yet: its first request loads it. */
  lazyPending: boolean;
  /** The version a lazy model will load, as its source said when it was prepared. */
  planned?: { version: string; path: string; config: ModelConfig };
  /** Version loads started, failed ones included. */
  loads: number;
  failure?: LoadFailure;
  /** Duration of the last load that brought new versions (cold start for the first one). */
  lastLoadMs?: number;
  lastSwap?: { from: string | undefined; to: string; at: string };
}

export class ServingTable {
  /** Written by the model manager only. */
  readonly entries = new Map<string, ModelEntry>();

  /** The ready version that serves a request, or an error saying why there is none. */
  resolve(name: string, version?: string): ModelVersion {
    const entry = this.entries.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    if (version === undefined || version === '') {
      const latest = entry.latest;
      if (latest && latest.state === 'READY') return latest;
      if (entry.state === 'FAILED') throw new UnavailableError(`model '${name}' failed to load: ${entry.reason}`);
      if (entry.lazyPending) throw new UnavailableError(`model '${name}' is not loaded yet: it loads on its first inference request`, 1);
      throw new UnavailableError(`model '${name}' is ${entry.state.toLowerCase()}`, 1);
    }
    const v = entry.versions.get(version);
    if (!v) {
      if (entry.state === 'LOADING' || entry.lazyPending) throw new UnavailableError(`model '${name}' is ${entry.lazyPending ? 'not loaded yet' : 'loading'}`, 1);
      throw new ModelNotFoundError(name, version);
    }
    return v;
  }

  /** Like resolve, but returns a version in any state, or none yet (metadata, readiness). */
  find(name: string, version?: string): { entry: ModelEntry; version: ModelVersion | undefined } {
    const entry = this.entries.get(name);
    if (!entry) throw new ModelNotFoundError(name);
    if (version === undefined || version === '') return { entry, version: entry.latest };
    const v = entry.versions.get(version);
    if (!v) {
      if (entry.lazyPending && !entry.latest) return { entry, version: undefined };
      throw new ModelNotFoundError(name, version);
    }
    return { entry, version: v };
  }

  isReady(name: string, version?: string): boolean {
    const { entry, version: v } = this.find(name, version);
    return entry.state === 'READY' && v !== undefined && v.healthy;
  }

  /** True when every eager model known to the manager is serving; lazy ones never hold readiness back. */
  allReady(): boolean {
    for (const e of this.entries.values()) {
      if (!e.lazy && e.state !== 'READY' && e.state !== 'UNAVAILABLE') return false;
      if (e.latest?.unhealthy !== undefined) return false;
    }
    return true;
  }

  versionsOf(name: string): ModelVersion[] {
    return [...(this.entries.get(name)?.versions.values() ?? [])];
  }

  loaded(): ModelVersion[] {
    return [...this.entries.values()].flatMap((e) => [...e.versions.values()]);
  }

  failures(): Array<{ name: string; reason: string }> {
    const out: Array<{ name: string; reason: string }> = [];
    for (const e of this.entries.values()) {
      if (e.reason !== undefined) out.push({ name: e.name, reason: e.reason });
      for (const v of e.versions.values()) if (v.unhealthy !== undefined) out.push({ name: e.name, reason: `version ${v.version} ${v.unhealthy}` });
    }
    return out;
  }

  /** Names the manager has entries for. */
  known(): string[] {
    return [...this.entries.keys()];
  }

  /** Known to the manager (loaded, loading, failed, pending or unloaded). */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Whether a lazy model still waits for its first request. */
  isLazyPending(name: string): boolean {
    return this.entries.get(name)?.lazyPending === true;
  }

  /** Loads started for a model so far (a lazy model's concurrent first requests add one). */
  loadCount(name: string): number {
    return this.entries.get(name)?.loads ?? 0;
  }
}
