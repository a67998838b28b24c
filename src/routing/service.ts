/**
 * The traffic state of every model in one place: the policies, the canary controllers and
 * their timers, blue-green state, shadow mirrors, the per-version observations, the record of
 * which variant served which request, and persistence. The routing policy (policy.ts) asks it
 * where a request goes; the admin handlers (admin.ts) read and change it.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { InferdError } from '../core/errors.js';
import type { InferenceRequest, RequestContext } from '../core/types.js';
import { assign, stickyKeyOf } from './assignment.js';
import { CanaryController, initialCanaryState, type CanaryAction, type CanaryEvent, type CanaryState } from './canary.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { parseTrafficConfig, trafficConfigOf, versionsOf, type TrafficConfig, type TrafficPolicy, type Variant } from './config.js';
import { emptyPeerWindow, latencyBucket, VersionObservations, type PeerWindow } from './observations.js';
import type { MirrorTarget } from '../workers/mirror.js';
import { ShadowMirror, type RunOnVersion, type ShadowStats } from './shadow.js';
import { TrafficConflictError, type Assignment, type CounterRow, type StoredTraffic, type TrafficStore } from './store.js';

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
  /** Which replica answers, and whether it is the one driving canaries. */
  controller: ControllerView;
}

export interface ControllerView {
  replica: string;
  leader: boolean;
}

export interface Logger {
  warn(obj: object, msg?: string): void;
  info?(obj: object, msg?: string): void;
}

export interface TrafficServiceOptions {
  store?: TrafficStore;
  observations?: VersionObservations;
  /** Runs a mirrored request on the shadow version; shadows are off without it. */
  runOnVersion?: RunOnVersion;
  /**
   * Where a version's worker threads take mirrored requests, when it runs in this process's
   * workers and is ready (see workers/mirror.ts); then mirrored requests go to them directly
   * instead of through `runOnVersion`.
   */
  mirrorTarget?: (model: string, version: string) => MirrorTarget | undefined;
  /**
   * Sets the nice value of a version's worker threads: a shadow version's are lowered to its
   * policy's `nice` while it is a shadow (and serves no variant), and set back to 0 when it stops
   * being one. Called only on changes; the model manager's setNice.
   */
  versionNice?: (model: string, version: string, nice: number) => unknown;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** Actor recorded for changes the controllers make themselves. Default 'inferd'. */
  actor?: string;
  /** How often the database is read for changes made by other replicas. Default 1 s; 0 = never. */
  refreshIntervalMs?: number;
  /** This replica's name in the lease and the counters. Default host:pid:random. */
  replicaId?: string;
  /**
   * With a store, one replica at a time drives the canaries: the holder of a lease in the
   * database, renewed every third of this and taken over by another replica once it lapses.
   * Default 15 s.
   */
  leaseTtlMs?: number;
  /** Request ids remembered in memory for joining feedback. Default 100,000. */
  recentAssignments?: number;
  /** Assignments waiting to be written; beyond it they are dropped (counted). Default 10,000. */
  assignmentBuffer?: number;
  assignmentFlushMs?: number;
}

/** The lease of the replica that drives every canary. */
const CONTROLLER_LEASE = 'traffic-controller';
/** Seconds of counters waiting to be written; beyond it new ones are dropped (counted). */
const COUNTER_BUFFER = 10_000;
/** Other replicas' counters of a second are read this long after it ends: two flushes and a margin. */
const COUNTER_LAG_MS = 2500;
/** Counters older than this are deleted from the database. */
const COUNTER_RETENTION_MS = 3_600_000;

interface CounterSecond {
  model: string;
  version: string;
  secondMs: number;
  requests: number;
  errors: number;
  latencies: Map<number, number>;
  qualityN: number;
  qualitySum: number;
}

class ModelTraffic {
  canary?: CanaryController;
  /** A measurement is being taken (reading other replicas' counters). */
  measuring = false;
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
  /** Counters for metrics: events by model and action, dropped assignments and counter seconds. */
  readonly counters = { events: new Map<string, number>(), droppedAssignments: 0, droppedCounters: 0 };
  readonly replicaId: string;
  private readonly leaseTtlMs: number;
  /** This replica drives canaries until then (local clock); 0: it does not. */
  private leaseValidUntil = 0;
  private leaseTimer?: Timer;
  private renewing?: Promise<void>;
  private readonly counting = new Map<string, CounterSecond>();
  private writingCounters?: Promise<void>;
  private lastPrune = 0;
  /** Stored policies this server cannot read: model -> revision. */
  private readonly unreadable = new Map<string, number>();
  /** Nice values this service set on shadow versions: model -> version -> nice. */
  private readonly nices = new Map<string, Map<string, number>>();

  private constructor(private readonly options: TrafficServiceOptions) {
    this.clock = options.clock ?? systemClock;
    this.observations = options.observations ?? new VersionObservations({ now: () => this.clock.now() });
    this.random = options.random ?? Math.random;
    this.actor = options.actor ?? 'inferd';
    this.recentLimit = options.recentAssignments ?? 100_000;
    this.pendingLimit = options.assignmentBuffer ?? 10_000;
    this.replicaId = options.replicaId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.leaseTtlMs = options.leaseTtlMs ?? 15_000;
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
      const refresh = options.refreshIntervalMs ?? 1000;
      if (refresh > 0) service.refreshTimer = service.clock.every(refresh, () => void service.refresh().catch((error) => service.warn(error, 'traffic: reading the store failed')));
      service.flushTimer = service.clock.every(options.assignmentFlushMs ?? 1000, () => {
        void service.flush();
        void service.flushCounters();
      });
      await service.renewLease();
      service.leaseTimer = service.clock.every(Math.max(1, Math.floor(service.leaseTtlMs / 3)), () => void service.renewLease());
    }
    return service;
  }

  // ---- which replica drives the canaries ----

  /** Whether this replica drives canaries now: always without a store, else while it holds the lease. */
  leads(): boolean {
    return this.options.store === undefined || this.clock.now() < this.leaseValidUntil;
  }

  /**
   * Takes or renews the lease. A replica that gains it first reads the latest state, so it
   * continues where the previous holder stopped. It counts itself the holder until 80% of the
   * term it asked for, so it stops before another replica may take over.
   */
  renewLease(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return Promise.resolve();
    this.renewing ??= (async () => {
      const asked = this.clock.now();
      try {
        const held = await store.acquireLease(CONTROLLER_LEASE, this.replicaId, asked, this.leaseTtlMs);
        const was = this.leads();
        if (held && !was) {
          await this.refresh();
          this.options.logger?.info?.({ replica: this.replicaId }, 'traffic: this replica now drives the canaries');
        } else if (!held && was) {
          this.options.logger?.info?.({ replica: this.replicaId }, 'traffic: another replica drives the canaries now');
        }
        this.leaseValidUntil = held ? asked + Math.floor(this.leaseTtlMs * 0.8) : 0;
      } catch (error) {
        this.warn(error, 'traffic: renewing the controller lease failed');
      }
    })().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  controller(): ControllerView {
    return { replica: this.replicaId, leader: this.leads() };
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
      // Warned about once per revision, not at every refresh.
      if (this.unreadable.get(stored.model) !== stored.revision) {
        this.warn(error, `traffic: the stored policy of model '${stored.model}' (revision ${stored.revision}) is not readable; keeping the current one`);
      }
      this.unreadable.set(stored.model, stored.revision);
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
      entry.shadow = new ShadowMirror(entry.model, entry.policy.shadow, this.options.runOnVersion, this.random, undefined, this.options.mirrorTarget);
    }
    entry.events = old?.events ?? [];
    this.models.set(entry.model, entry);
    this.syncNice(entry.model);
  }

  /**
   * Brings a model's shadow version priority in line with its policy: the shadow version at the
   * policy's nice (unless a variant also routes callers to it), any version lowered before at 0.
   */
  private syncNice(model: string): void {
    const set = this.options.versionNice;
    if (set === undefined) return;
    const entry = this.models.get(model);
    const wanted = new Map<string, number>();
    const shadow = entry?.policy.shadow;
    if (shadow !== undefined && this.options.runOnVersion !== undefined) {
      const routed = entry!.policy.routing === undefined ? [] : versionsOf({ routing: entry!.policy.routing });
      wanted.set(shadow.version, routed.includes(shadow.version) ? 0 : shadow.nice);
    }
    const before = this.nices.get(model) ?? new Map<string, number>();
    const apply = (version: string, nice: number): void => {
      Promise.resolve()
        .then(() => set(model, version, nice))
        .catch((error: unknown) => this.warn(error, 'traffic: setting the shadow version priority failed'));
    };
    for (const [version, nice] of before) if (!wanted.has(version) && nice !== 0) apply(version, 0);
    for (const [version, nice] of wanted) if (before.get(version) !== nice) apply(version, nice);
    if (wanted.size === 0) this.nices.delete(model);
    else this.nices.set(model, wanted);
  }

  /**
   * One measurement and its consequences, on the replica that holds the lease; the others
   * follow the state it stores. With a store, the window also counts the requests every other
   * replica wrote to it: whole seconds, read once they are surely written (2.5 s after they
   * end), each second in exactly one measurement.
   */
  private tick(entry: ModelTraffic): void {
    if (this.models.get(entry.model) !== entry || entry.canary === undefined || !this.leads()) return;
    const store = this.options.store;
    const now = this.clock.now();
    if (store === undefined) {
      this.measure(entry, now, undefined);
      return;
    }
    if (entry.measuring) return;
    entry.measuring = true;
    // Seconds every replica has finished and written (a flush interval and a margin ago).
    const state = entry.canary.state;
    const to = Math.floor((now - COUNTER_LAG_MS) / 1000) * 1000;
    const from = Math.max(state.peersCountedUntil ?? Math.floor(state.measuredUntil / 1000) * 1000, to - COUNTER_RETENTION_MS);
    // A previous leader counted its own requests up to measuredUntil from memory: not again.
    const previous = state.measuredBy !== undefined && state.measuredBy !== this.replicaId ? state.measuredBy : undefined;
    const counted = state.measuredUntil;
    store
      .counters(entry.model, from, Math.max(from, to), this.replicaId)
      .then(
        (rows) => peerWindows(previous === undefined ? rows : rows.filter((r) => !(r.replica === previous && r.secondMs + 1000 <= counted))),
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      )
      .then((peers) => {
        // The lease or the policy may have changed while the counters were read.
        if (this.models.get(entry.model) !== entry || !this.leads() || entry.canary === undefined) return;
        if (!(peers instanceof Error)) entry.canary.state.peersCountedUntil = Math.max(from, to);
        entry.canary.state.measuredBy = this.replicaId;
        this.measure(entry, now, peers);
      })
      .finally(() => {
        entry.measuring = false;
      });
  }

  private measure(entry: ModelTraffic, now: number, peers: ReadonlyMap<string, PeerWindow> | Error | undefined): void {
    if (entry.canary === undefined) return;
    entry.canary.tick(now, peers);
    if (!entry.canary.active) entry.timer?.cancel();
    // Every measurement changes the state (counts, the window's end): stored each interval.
    if (this.options.store !== undefined) void this.persist(entry, this.actor, false);
  }

  private canaryEvent(entry: ModelTraffic, e: CanaryEvent): void {
    this.event(entry, e.action, this.acting ?? this.actor, {
      weight: e.weight,
      ...(e.reason !== undefined ? { reason: e.reason } : {}),
      ...(this.options.store !== undefined ? { replica: this.replicaId } : {}),
    });
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
      if (this.unreadable.get(model) === revision) continue;
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
    else this.syncNice(model);
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
    const at = this.clock.now();
    this.observations.recordRequest(model, version, failed, latencyMs, at);
    const second = this.counterSecond(model, version, at);
    if (second === undefined) return;
    second.requests += 1;
    if (failed) second.errors += 1;
    const bucket = latencyBucket(latencyMs);
    second.latencies.set(bucket, (second.latencies.get(bucket) ?? 0) + 1);
  }

  /** A feedback outcome of a version (canary quality checks read it). */
  observeOutcome(model: string, version: string, value: number, at = this.clock.now()): void {
    this.observations.recordOutcome(model, version, value, at);
    if (!Number.isFinite(value)) return;
    const second = this.counterSecond(model, version, at);
    if (second === undefined) return;
    second.qualityN += 1;
    second.qualitySum += value;
  }

  /** This second's counters of a version, kept where a canary may need them across replicas. */
  private counterSecond(model: string, version: string, at: number): CounterSecond | undefined {
    if (this.options.store === undefined || this.models.get(model)?.canary?.active !== true) return undefined;
    const secondMs = Math.floor(at / 1000) * 1000;
    const key = `${model}\u0000${version}\u0000${secondMs}`;
    let second = this.counting.get(key);
    if (second === undefined) {
      if (this.counting.size >= COUNTER_BUFFER) {
        this.counters.droppedCounters += 1;
        return undefined;
      }
      second = { model, version, secondMs, requests: 0, errors: 0, latencies: new Map(), qualityN: 0, qualitySum: 0 };
      this.counting.set(key, second);
    }
    return second;
  }

  /** Writes the finished seconds of counters; one write at a time. The leader also prunes old ones. */
  flushCounters(): Promise<void> {
    const store = this.options.store;
    if (store === undefined) return Promise.resolve();
    this.writingCounters ??= (async () => {
      const now = this.clock.now();
      const rows: CounterRow[] = [];
      for (const [key, s] of this.counting) {
        if (s.secondMs + 1000 > now) continue;
        this.counting.delete(key);
        rows.push({
          model: s.model,
          version: s.version,
          replica: this.replicaId,
          secondMs: s.secondMs,
          requests: s.requests,
          errors: s.errors,
          latencies: Object.fromEntries(s.latencies),
          qualityN: s.qualityN,
          qualitySum: s.qualitySum,
        });
      }
      try {
        await store.writeCounters(rows);
        if (this.leads() && now - this.lastPrune >= 60_000) {
          this.lastPrune = now;
          await store.pruneCounters(now - COUNTER_RETENTION_MS);
        }
      } catch (error) {
        this.counters.droppedCounters += rows.length;
        this.warn(error, 'traffic: writing request counters failed');
      }
    })().finally(() => {
      this.writingCounters = undefined;
    });
    return this.writingCounters;
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
      controller: this.controller(),
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
    this.leaseTimer?.cancel();
    await this.renewing;
    if (this.options.store !== undefined && this.leads()) {
      this.leaseValidUntil = 0;
      // Handing over at once: the next replica need not wait for the lease to lapse.
      await this.options.store.releaseLease(CONTROLLER_LEASE, this.replicaId).catch((error) => this.warn(error, 'traffic: releasing the controller lease failed'));
    }
    for (const entry of this.models.values()) {
      entry.timer?.cancel();
      entry.shadow?.close();
    }
    await Promise.all([this.flush(), this.flushCounters()]);
  }
}

/** Other replicas' counter rows of a window, summed by version. */
function peerWindows(rows: readonly CounterRow[]): Map<string, PeerWindow> {
  const byVersion = new Map<string, PeerWindow>();
  for (const r of rows) {
    let w = byVersion.get(r.version);
    if (w === undefined) {
      w = emptyPeerWindow();
      byVersion.set(r.version, w);
    }
    w.requests += r.requests;
    w.errors += r.errors;
    w.qualitySamples += r.qualityN;
    w.qualitySum += r.qualitySum;
    for (const [bucket, n] of Object.entries(r.latencies)) w.latencies.set(Number(bucket), (w.latencies.get(Number(bucket)) ?? 0) + n);
  }
  return byVersion;
}
