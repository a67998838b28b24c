/**
 * Model control modes, as Triton's:
 * - `none`: every model is made available at start (eager ones loaded before readiness, lazy
 *   ones on their first request); nothing is watched. The repository API still loads, reloads
 *   and unloads by name.
 * - `explicit`: only `startup_models` are made available at start; the others only by
 *   `POST /v2/repository/models/{m}/load`.
 * - `poll`: as none, then the repository directory is rescanned and the registry's event log
 *   read every `poll_interval_ms`: new and changed models and versions load, removed ones
 *   unload, and a registry model whose alias or stage moved is hot-swapped to its new version.
 *   A remote repository (s3://, http(s)://) is re-synced into its local copy before each rescan.
 *
 * A reload that fails leaves the serving version serving; polling does not retry the same
 * failing artifact until something changes (an explicit load always retries).
 */
import type { Logger } from 'pino';
import { toInferdError } from '../core/errors.js';
import type { ModelManager } from './manager.js';
import type { RegistryLink } from './registry-link.js';

export type ControlMode = 'none' | 'explicit' | 'poll';

export interface ModelControlOptions {
  mode: ControlMode;
  startupModels: readonly string[];
  pollIntervalMs: number;
  registry?: RegistryLink;
  logger?: Logger;
}

export class ModelControl {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Last registry event handled; undefined until the registry has been read once. */
  private since: number | undefined;
  private tick: Promise<void> | undefined;
  private soon = false;

  constructor(
    private readonly manager: ModelManager,
    private readonly options: ModelControlOptions,
  ) {}

  /** Makes the models of the mode available; resolves when eager ones are loaded (or failed). */
  async start(): Promise<void> {
    const { mode, registry } = this.options;
    // Read the event log's position first, so a move made while models load is not missed.
    if (mode === 'poll' && registry && this.manager.served.hasRegistryModels) this.since = await this.lastEventId(registry);
    if (mode === 'explicit') {
      await Promise.all(this.options.startupModels.map((name) => this.manager.start(name).catch(() => undefined)));
    } else {
      await this.manager.loadAll();
    }
    if (mode === 'poll') this.schedule();
  }

  private async lastEventId(registry: RegistryLink): Promise<number | undefined> {
    try {
      const id = await (await registry.get()).lastEventId();
      registry.noteSuccess();
      return id;
    } catch (error) {
      registry.noteFailure(error);
      return undefined;
    }
  }

  private schedule(delayMs = this.options.pollIntervalMs): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.tick = this.pollOnce().finally(() => {
        this.tick = undefined;
        const again = this.soon;
        this.soon = false;
        this.schedule(again ? 0 : this.options.pollIntervalMs);
      });
    }, delayMs);
  }

  /**
   * In poll mode, polls now instead of at the next tick (a change made through this server's
   * admin API need not wait for the interval). Elsewhere it does nothing.
   */
  pollSoon(): void {
    if (this.options.mode !== 'poll' || this.stopped) return;
    if (this.timer === undefined) {
      // A tick is running and may have read the event log before the change: poll again after it.
      this.soon = true;
      return;
    }
    clearTimeout(this.timer);
    this.schedule(0);
  }

  /** One poll: the repository directory, then the registry's new events. */
  async pollOnce(): Promise<void> {
    await this.pollRepository();
    if (this.options.registry && this.manager.served.hasRegistryModels) await this.pollRegistry(this.options.registry);
  }

  private async pollRepository(): Promise<void> {
    const m = this.manager;
    // A mirrored remote repository is re-synced first; when the store is down the cached copy serves.
    await m.repository.refresh().catch((error: unknown) => {
      this.options.logger?.debug({ err: toInferdError(error).message }, 'model repository refresh failed');
    });
    try {
      const fromRegistry = new Set(m.served.registry.map((s) => s.name));
      let present: Set<string>;
      try {
        present = new Set(await m.repository.list());
      } catch (error) {
        if (fromRegistry.size === 0) throw error;
        present = new Set();
      }
      for (const name of present) {
        if (fromRegistry.has(name) || this.stopped) continue;
        if (!m.serving.has(name)) await m.start(name).catch(() => undefined);
        else if (!m.serving.isLazyPending(name)) await m.load(name, { retryFailed: false }).catch(() => undefined);
      }
      for (const name of m.serving.known()) {
        if (fromRegistry.has(name) || present.has(name) || this.stopped) continue;
        await m.remove(name).catch(() => undefined);
      }
    } catch (error) {
      this.options.logger?.warn({ err: toInferdError(error).message }, 'model repository poll failed');
    }
  }

  /** Reloads every served model whose registered model has new events (alias, stage, profile...). */
  private async pollRegistry(registry: RegistryLink): Promise<void> {
    const m = this.manager;
    let changed: Set<string>;
    try {
      const reg = await registry.get();
      if (this.since === undefined) {
        // First contact after an outage at start: catch up on everything served from it.
        this.since = await reg.lastEventId();
        changed = new Set(m.served.registry.map((s) => s.model));
      } else {
        changed = new Set();
        for (;;) {
          const events = await reg.changes(this.since, 500);
          for (const e of events) {
            changed.add(e.model);
            this.since = e.id;
          }
          if (events.length < 500) break;
        }
      }
      registry.noteSuccess();
    } catch (error) {
      registry.noteFailure(error);
      return;
    }
    for (const model of changed) {
      for (const spec of m.served.servedFrom(model)) {
        if (this.stopped) return;
        // A lazy model not loaded yet only learns which version its first request will load.
        const neverLoaded = spec.load === 'lazy' && m.serving.loadCount(spec.name) === 0;
        if (m.serving.isLazyPending(spec.name) || (neverLoaded && m.serving.has(spec.name))) await m.prepareLazy(spec.name).catch(() => undefined);
        else if (m.serving.has(spec.name) && this.wanted(spec.name)) await m.load(spec.name, { retryFailed: false }).catch(() => undefined);
      }
    }
  }

  /** A model unloaded by the API stays unloaded; loaded, loading and failed ones follow the registry. */
  private wanted(name: string): boolean {
    const state = this.manager.statusOf(name).state;
    return state !== 'UNAVAILABLE';
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.tick?.catch(() => undefined);
  }
}
