/**
 * The traffic state of every model in one place: the policies, the canary controllers and
 * their timers, blue-green state, shadow mirrors, the per-version observations, the record of
 * which variant served which request, and persistence. The routing policy (policy.ts) asks it
 * where a request goes; the admin handlers (admin.ts) read and change it.
 */
import { InferdError } from '../core/errors.js';
import type { InferenceRequest, RequestContext } from '../core/types.js';
import { assign, stickyKeyOf } from './assignment.js';
import { CanaryController, initialCanaryState, type CanaryAction, type CanaryEvent, type CanaryState } from './canary.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { parseTrafficConfig, trafficConfigOf, versionsOf, type TrafficConfig, type TrafficPolicy, type Variant } from './config.js';
import { VersionObservations } from './observations.js';
import { ShadowMirror, type RunOnVersion, type ShadowStats } from './shadow.js';
import { TrafficConflictError, type Assignment, type StoredTraffic, type TrafficStore } from './store.js';

export interface RouteDecision {
  version: string;
  variant: string;
}

export interface BlueGreenState {
  /** When the last switch happened, and the version it switched away from. */
  switchedAt?: number;
  previous?: string;
  /** The previous version stays loaded until then. */
  warmUntil?: number;
}

export interface TrafficEvent {
  at: number;
  model: string;
  action: string;
  actor: string;
  details: Record<string, unknown>;
}

export type TrafficAction = CanaryAction | 'switch' | 'rollback';

export interface TrafficView {
  model: string;
  revision: number;
  /** Where the policy came from: the server configuration, or a change stored in the database. */
  source: 'config' | 'stored';
  policy: TrafficConfig;
  /** The weights in force now (a canary's current step, the active blue-green version). */
  variants: Variant[];
  canary?: CanaryState;
  blueGreen?: BlueGreenState;
  shadow?: ShadowStats;
  events: TrafficEvent[];
}

export interface Logger {
  warn(obj: object, msg?: string): void;
}

export interface TrafficServiceOptions {
  store?: TrafficStore;
  observations?: VersionObservations;
  /** Runs a mirrored request on the shadow version; shadows are off without it. */
  runOnVersion?: RunOnVersion;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Actor recorded for changes the controllers make themselves. Default 'inferd'. */
  actor?: string;
  /** How often the database is read for changes made by other replicas. Default 5 s; 0 = never. */
  refreshIntervalMs?: number;
  /** Request ids remembered in memory for joining feedback. Default 100,000. */
  recentAssignments?: number;
  /** Assignments waiting to be written; beyond it they are dropped (counted). Default 10,000. */
  assignmentBuffer?: number;
  assignmentFlushMs?: number;
}

class ModelTraffic {
  canary?: CanaryController;
  blueGreen?: BlueGreenState;
  shadow?: ShadowMirror;
  timer?: Timer;
  events: TrafficEvent[] = [];
  /** When this policy was set at run time (experiments count their duration from it). */
  startedAt: number | null = null;

  constructor(
    readonly model: string,
    public policy: TrafficPolicy,
    public revision: number,
    public source: 'config' | 'stored',
  ) {}

  variants(): Variant[] {
    const r = this.policy.routing;
    if (r === undefined) return [];
    if (r.kind === 'split') return r.variants;
    if (r.kind === 'blue_green') return [{ name: 'active', version: r.active, weight: 100 }];
    const weight = this.canary?.state.weight ?? 0;
    return [
      { name: 'canary', version: r.canary, weight },
      { name: 'baseline', version: r.baseline, weight: 100 - weight },
    ];
  }

  state(): Record<string, unknown> {
    return {
      ...(this.canary !== undefined ? { canary: this.canary.state } : {}),
      ...(this.blueGreen !== undefined ? { blue_green: this.blueGreen } : {}),
      ...(this.startedAt !== null ? { started_at: this.startedAt } : {}),
    };
  }
}

const RECENT_EVENTS = 50;

export class TrafficService {
  readonly observations: VersionObservations;
  private readonly models = new Map<string, ModelTraffic>();
  private readonly configured = new Map<string, TrafficPolicy>();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly actor: string;
  private readonly recent = new Map<string, Assignment>();
  private readonly recentLimit: number;
  private pending: Assignment[] = [];
  private readonly pendingLimit: number;
  /** The operator whose action is being applied, for the events it causes. */
  private acting: string | undefined;
  private refreshTimer?: Timer;
  private flushTimer?: Timer;
  private flushing?: Promise<void>;
  private readonly listeners = new Set<(event: TrafficEvent) => void>();
  /** Counters for metrics: events by model and action, dropped assignments. */
  readonly counters = { events: new Map<string, number>(), droppedAssignments: 0 };

  private constructor(private readonly options: TrafficServiceOptions) {
    this.clock = options.clock ?? systemClock;
    this.observations = options.observations ?? new VersionObservations({ now: () => this.clock.now() });
    this.random = options.random ?? Math.random;
    this.actor = options.actor ?? 'inferd';
    this.recentLimit = options.recentAssignments ?? 100_000;
    this.pendingLimit = options.assignmentBuffer ?? 10_000;
  }

  /**
   * Starts with the policies of the server configuration; a policy stored in the database (set
   * at run time) takes precedence over the configured one for the same model.
   */
  static async open(configured: ReadonlyMap<string, TrafficPolicy>, options: TrafficServiceOptions = {}): Promise<TrafficService> {
    const service = new TrafficService(options);
    for (const [model, policy] of configured) {
      service.configured.set(model, policy);
      service.install(new ModelTraffic(model, policy, 0, 'config'), undefined);
    }
    if (options.store !== undefined) {
      for (const stored of await options.store.loadAll()) service.installStored(stored);
      const refresh = options.refreshIntervalMs ?? 5000;
      if (refresh > 0) service.refreshTimer = service.clock.every(refresh, () => void service.refresh().catch((error) => service.warn(error, 'traffic: reading the store failed')));
      service.flushTimer = service.clock.every(options.assignmentFlushMs ?? 1000, () => void service.flush());
    }
    return service;
  }

  private warn(error: unknown, msg: string): void {
    this.options.logger?.warn({ err: error instanceof Error ? error.message : String(error) }, msg);
  }

  onEvent(listener: (event: TrafficEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- installing policies ----

  /** A stored policy this server cannot read (written by a newer one) is reported and skipped, never fatal. */
  private installStored(stored: StoredTraffic): void {
    let policy: TrafficPolicy;
    try {
      policy = parseTrafficConfig(stored.policy, stored.model);
    } catch (error) {
      this.warn(error, `traffic: the stored policy of model '${stored.model}' (revision ${stored.revision}) is not readable; keeping the current one`);
      return;
    }
    const entry = new ModelTraffic(stored.model, policy, stored.revision, 'stored');
    this.install(entry, stored.state);
  }

  private install(entry: ModelTraffic, state: Record<string, unknown> | undefined): void {
    this.build(entry, state);
    this.activate(entry);
  }

  /** Restores or creates the entry's controllers from saved state; nothing runs yet. */
  private build(entry: ModelTraffic, state: Record<string, unknown> | undefined): void {
    const r = entry.policy.routing;
    if (r?.kind === 'canary') {
      const saved = state?.['canary'] as CanaryState | undefined;
      entry.canary = new CanaryController(entry.model, r, saved ?? initialCanaryState(r, this.clock.now()), this.observations, (e) => this.canaryEvent(entry, e));
    }
    if (r?.kind === 'blue_green') entry.blueGreen = (state?.['blue_green'] as BlueGreenState | undefined) ?? {};
    const startedAt = state?.['started_at'];
    if (typeof startedAt === 'number') entry.startedAt = startedAt;
  }

  /** Puts the entry in force in one step: the old one's timer and shadow stop, the new ones start. */
  private activate(entry: ModelTraffic): void {
    const old = this.models.get(entry.model);
    old?.timer?.cancel();
    old?.shadow?.close();
    if (entry.canary?.active === true) entry.timer = this.clock.every(entry.canary.policy.analysis.intervalMs, () => this.tick(entry));
    if (entry.policy.shadow !== undefined && this.options.runOnVersion !== undefined) {
      entry.shadow = new ShadowMirror(entry.model, entry.policy.shadow, this.options.runOnVersion, this.random);
    }
    entry.events = old?.events ?? [];
    this.models.set(entry.model, entry);
  }

  private tick(entry: ModelTraffic): void {
    if (this.models.get(entry.model) !== entry || entry.canary === undefined) return;
    entry.canary.tick(this.clock.now());
    if (!entry.canary.active) entry.timer?.cancel();
    // Every measurement changes the state (counts, the window's end): stored each interval.
    if (this.options.store !== undefined) void this.persist(entry, this.actor, false);
  }

  private canaryEvent(entry: ModelTraffic, e: CanaryEvent): void {
    this.event(entry, e.action, this.acting ?? this.actor, { weight: e.weight, ...(e.reason !== undefined ? { reason: e.reason } : {}) });
  }

  private event(entry: ModelTraffic, action: string, actor: string, details: Record<string, unknown>): void {
    const event: TrafficEvent = { at: this.clock.now(), model: entry.model, action, actor, details };
    entry.events.push(event);
    if (entry.events.length > RECENT_EVENTS) entry.events.splice(0, entry.events.length - RECENT_EVENTS);
    const key = `${entry.model}\u0000${action}`;
    this.counters.events.set(key, (this.counters.events.get(key) ?? 0) + 1);
    for (const listener of this.listeners) listener(event);
    void this.options.store?.appendEvent(entry.model, action, actor, details, event.at).catch((error) => this.warn(error, 'traffic: recording an event failed'));
  }

  /**
   * Writes the entry; a concurrent change by another replica wins and is loaded instead. An
   * operator's action (`rethrow`) then fails with the conflict, to be retried on the new state.
   */
  private async persist(entry: ModelTraffic, actor: string, rethrow: boolean): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return;
    try {
      entry.revision = await store.save(entry.model, trafficConfigOf(entry.policy), entry.state(), entry.revision, actor, this.clock.now());
      entry.source = 'stored';
    } catch (error) {
      if (error instanceof TrafficConflictError) {
        await this.refresh().catch((e) => this.warn(e, 'traffic: reading the store failed'));
        if (rethrow) throw error;
      } else {
        this.warn(error, 'traffic: saving the policy failed');
        if (rethrow) throw error;
      }
    }
  }

  /** Loads policies other replicas changed since they were read here. */
  async refresh(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return;
    const revisions = await store.revisions();
    for (const [model, revision] of revisions) {
      const entry = this.models.get(model);
      if (entry !== undefined && entry.source === 'stored' && entry.revision >= revision) continue;
      const stored = await store.load(model);
      if (stored !== undefined) this.installStored(stored);
    }
    for (const [model, entry] of this.models) {
      if (entry.source === 'stored' && !revisions.has(model)) this.removeEntry(model);
    }
  }

  private removeEntry(model: string): void {
    const entry = this.models.get(model);
    entry?.timer?.cancel();
    entry?.shadow?.close();
    this.models.delete(model);
    const configured = this.configured.get(model);
    if (configured !== undefined) this.install(new ModelTraffic(model, configured, 0, 'config'), undefined);
  }

  // ---- the request path ----

  /** Where a request for `model` that names no version goes; undefined when the model has no routing policy. */
  route(model: string, ctx: RequestContext, request: InferenceRequest): RouteDecision | undefined {
    const entry = this.models.get(model);
    const r = entry?.policy.routing;
    if (entry === undefined || r === undefined) return undefined;
    const sticky = r.kind === 'blue_green' ? undefined : r.sticky;
    const variant = assign(entry.variants(), stickyKeyOf(sticky, ctx, request), this.random);
    return variant === undefined ? undefined : { version: variant.version, variant: variant.name };
  }

  shadowOf(model: string): ShadowMirror | undefined {
    return this.models.get(model)?.shadow;
  }

  hasPolicy(model: string): boolean {
    return this.models.has(model);
  }

  /** Tells the observations how a routed request ended. */
  observe(model: string, version: string, failed: boolean, latencyMs: number): void {
    this.observations.recordRequest(model, version, failed, latencyMs, this.clock.now());
  }

  /**
   * Remembers which variant served a request, for joining its feedback later: in memory (the
   * latest `recentAssignments`), and in the database for models running an experiment.
   */
  noteAssignment(assignment: Assignment): void {
    if (this.recent.size >= this.recentLimit) {
      const oldest = this.recent.keys().next().value;
      if (oldest !== undefined) this.recent.delete(oldest);
    }
    this.recent.set(assignment.requestId, assignment);
    // Written to the database only where feedback is analysed across replicas: experiments.
    const r = this.models.get(assignment.model)?.policy.routing;
    if (this.options.store === undefined || r?.kind !== 'split' || r.experiment === undefined) return;
    if (this.pending.length >= this.pendingLimit) {
      this.counters.droppedAssignments += 1;
      return;
    }
    this.pending.push(assignment);
  }

  /** Writes the assignments waiting in memory; one flush at a time. */
  flush(): Promise<void> {
    const store = this.options.store;
    if (store === undefined || this.pending.length === 0) return this.flushing ?? Promise.resolve();
    if (this.flushing !== undefined) return this.flushing;
    const batch = this.pending;
    this.pending = [];
    this.flushing = store
      .recordAssignments(batch)
      .catch((error) => {
        this.counters.droppedAssignments += batch.length;
        this.warn(error, 'traffic: recording assignments failed');
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  async assignmentOf(requestId: string): Promise<Assignment | undefined> {
    const known = this.recent.get(requestId);
    if (known !== undefined) return known;
    await this.flush();
    return this.options.store?.assignment(requestId);
  }

  get store(): TrafficStore | undefined {
    return this.options.store;
  }

  now(): number {
    return this.clock.now();
  }

  // ---- reading and changing policies ----

  modelsWithPolicies(): string[] {
    return [...this.models.keys()].sort();
  }

  policyOf(model: string): TrafficPolicy | undefined {
    return this.models.get(model)?.policy;
  }

  startedAt(model: string): number | null {
    return this.models.get(model)?.startedAt ?? null;
  }

  view(model: string): TrafficView | undefined {
    const entry = this.models.get(model);
    if (entry === undefined) return undefined;
    return {
      model,
      revision: entry.revision,
      source: entry.source,
      policy: trafficConfigOf(entry.policy),
      variants: entry.variants().map((v) => ({ ...v })),
      ...(entry.canary !== undefined ? { canary: structuredClone(entry.canary.state) } : {}),
      ...(entry.blueGreen !== undefined ? { blueGreen: { ...entry.blueGreen } } : {}),
      ...(entry.shadow !== undefined ? { shadow: entry.shadow.stats() } : {}),
      events: entry.events.slice(),
    };
  }

  /** Versions that must stay loaded for the policy now (blue-green's previous one until its keep-warm time ends). */
  requiredVersions(model: string): string[] {
    const entry = this.models.get(model);
    if (entry === undefined) return [];
    const r = entry.policy.routing;
    if (r?.kind === 'blue_green') {
      const bg = entry.blueGreen ?? {};
      const keepStandby = bg.warmUntil === undefined || this.clock.now() < bg.warmUntil;
      const versions = [r.active, ...(keepStandby ? [r.standby] : [])];
      if (entry.policy.shadow !== undefined) versions.push(entry.policy.shadow.version);
      return [...new Set(versions)];
    }
    return versionsOf(entry.policy);
  }

  /**
   * Replaces a model's policy (undefined removes the run-time one: the configured policy, if
   * any, applies again). `expectedRevision` makes it a compare-and-set. Returns the new view.
   */
  async setPolicy(model: string, raw: unknown, actor: string, expectedRevision?: number): Promise<TrafficView | undefined> {
    const existing = this.models.get(model);
    if (expectedRevision !== undefined && (existing?.revision ?? 0) !== expectedRevision) {
      throw new TrafficConflictError(model, existing?.revision ?? 0);
    }
    if (raw === undefined || raw === null) {
      if (this.options.store !== undefined) await this.options.store.remove(model);
      if (existing !== undefined) this.event(existing, 'traffic.removed', actor, {});
      this.removeEntry(model);
      this.observations.forget(model);
      return this.view(model);
    }
    const policy = parseTrafficConfig(raw, model, `traffic of model '${model}'`);
    const entry = new ModelTraffic(model, policy, existing?.revision ?? 0, existing?.source ?? 'config');
    entry.startedAt = this.clock.now();
    if (this.options.store !== undefined) {
      const previous = existing?.source === 'stored' ? existing.revision : ((await this.options.store.load(model))?.revision ?? 0);
      entry.revision = previous;
    }
    this.build(entry, undefined);
    // Stored first: a policy another replica changed meanwhile is refused, not half applied.
    if (this.options.store !== undefined) {
      entry.revision = await this.options.store.save(model, trafficConfigOf(policy), entry.state(), entry.revision, actor, this.clock.now());
      entry.source = 'stored';
    }
    this.activate(entry);
    this.event(entry, 'traffic.set', actor, { policy: trafficConfigOf(policy) });
    if (entry.canary !== undefined) this.event(entry, 'canary.started', actor, { weight: entry.canary.state.weight });
    return this.view(model);
  }

  /** Operator actions: canary pause|resume|promote|promote_full|abort; blue-green switch|rollback. */
  async act(model: string, action: TrafficAction, actor: string, reason?: string): Promise<TrafficView> {
    const entry = this.models.get(model);
    if (entry === undefined) throw new InferdError('NOT_FOUND', `model '${model}' has no traffic policy`);
    const r = entry.policy.routing;
    const now = this.clock.now();
    if (action === 'switch' || action === 'rollback') {
      if (r?.kind !== 'blue_green') throw new InferdError('FAILED_PRECONDITION', `'${action}' applies to a blue_green policy; model '${model}' has ${r === undefined ? 'no routing policy' : `a ${r.kind} policy`}`);
      const bg = entry.blueGreen ?? {};
      if (action === 'rollback' && bg.previous === undefined) throw new InferdError('FAILED_PRECONDITION', `model '${model}' has not been switched; nothing to roll back`);
      const from = r.active;
      // One assignment of the policy object: every request after it sees the new version.
      entry.policy = { ...entry.policy, routing: { ...r, active: r.standby, standby: r.active } };
      entry.blueGreen = { switchedAt: now, previous: from, warmUntil: now + r.keepWarmMs };
      this.event(entry, action === 'switch' ? 'blue_green.switched' : 'blue_green.rolled_back', actor, { from, to: r.standby, ...(reason !== undefined ? { reason } : {}) });
    } else {
      if (entry.canary === undefined) throw new InferdError('FAILED_PRECONDITION', `'${action}' applies to a canary policy; model '${model}' has ${r === undefined ? 'no routing policy' : `a ${r.kind} policy`}`);
      this.acting = actor;
      try {
        entry.canary.act(action, now, reason);
      } catch (error) {
        throw new InferdError('FAILED_PRECONDITION', error instanceof Error ? error.message : String(error));
      } finally {
        this.acting = undefined;
      }
      entry.timer?.cancel();
      if (entry.canary.active) entry.timer = this.clock.every(entry.canary.policy.analysis.intervalMs, () => this.tick(entry));
    }
    await this.persist(entry, actor, true);
    return this.view(model)!;
  }

  async close(): Promise<void> {
    this.refreshTimer?.cancel();
    this.flushTimer?.cancel();
    for (const entry of this.models.values()) {
      entry.timer?.cancel();
      entry.shadow?.close();
    }
    await this.flush();
  }
}
