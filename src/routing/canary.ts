/**
 * Canary analysis and progression, inside the server.
 *
 * Every analysis interval the canary's requests of that interval are measured against the
 * baseline's (error rate, p95/p99 latency, optionally the mean feedback outcome). A measurement
 * is, as in Argo Rollouts' AnalysisRun:
 * - successful: every check passed;
 * - failed: a check failed. More than `failureLimit` failures roll the canary back (weight 0);
 *   Flagger's `threshold` is the same count plus one;
 * - inconclusive: too few canary requests to judge. More than `inconclusiveLimit` pause the
 *   canary (held at its weight until an operator resumes, promotes or aborts);
 * - error: no measurement could be taken. More than `consecutiveErrorLimit` in a row roll back.
 * The counts run over the whole rollout, as one background analysis does in Argo Rollouts.
 *
 * A step advances when its pause has elapsed and it had at least one successful measurement
 * (an unmeasured step is never promoted). Reaching weight 100 promotes the canary.
 */
import type { AnalysisConfig, CanaryPolicy } from './config.js';
import type { PeerWindow, VersionObservations, WindowSummary } from './observations.js';

export type CanaryPhase = 'progressing' | 'paused' | 'promoted' | 'rolled_back' | 'aborted';
export type MeasurementOutcome = 'successful' | 'failed' | 'inconclusive' | 'error';

export interface Check {
  name: string;
  value: number;
  limit: number;
  passed: boolean;
}

export interface Measurement {
  at: number;
  outcome: MeasurementOutcome;
  checks: Check[];
  canary?: WindowSummary;
  baseline?: WindowSummary;
  /** Why the measurement is inconclusive or an error. */
  message?: string;
}

export interface CanaryState {
  phase: CanaryPhase;
  stepIndex: number;
  /** The canary's share of traffic now, percent. */
  weight: number;
  stepStartedAt: number;
  /** Successful measurements since the current step began. */
  stepSuccesses: number;
  failed: number;
  inconclusive: number;
  consecutiveErrors: number;
  /** End of the last measured window; the next window starts here. */
  measuredUntil: number;
  /**
   * Other replicas' counters come in whole seconds, written once a second is over: the seconds
   * before this one have been counted (each in one measurement); absent until the first.
   */
  peersCountedUntil?: number;
  /** The replica that took the last measurement (its own requests came from its memory, not its counters). */
  measuredBy?: string;
  /** The most recent measurements, newest last (bounded). */
  measurements: Measurement[];
  pausedBy?: 'analysis' | 'operator';
  reason?: string;
  updatedAt: number;
}

export interface CanaryEvent {
  action: 'canary.started' | 'canary.step' | 'canary.paused' | 'canary.resumed' | 'canary.promoted' | 'canary.rolled_back' | 'canary.aborted';
  at: number;
  weight: number;
  reason?: string;
}

const KEPT_MEASUREMENTS = 20;

export function initialCanaryState(policy: CanaryPolicy, now: number): CanaryState {
  const first = policy.steps[0]!;
  return {
    phase: first.weight >= 100 ? 'promoted' : 'progressing',
    stepIndex: 0,
    weight: first.weight,
    stepStartedAt: now,
    stepSuccesses: 0,
    failed: 0,
    inconclusive: 0,
    consecutiveErrors: 0,
    measuredUntil: now,
    measurements: [],
    updatedAt: now,
  };
}

function check(name: string, value: number, limit: number, passed: boolean): Check {
  return { name, value, limit, passed };
}

/** Judges one window of canary and baseline observations against the configured checks. */
export function analyse(config: AnalysisConfig, canary: WindowSummary, baseline: WindowSummary, at: number): Measurement {
  if (canary.requests < config.minRequests) {
    return { at, outcome: 'inconclusive', checks: [], canary, baseline, message: `${canary.requests} canary requests in the interval, fewer than min_requests ${config.minRequests}` };
  }
  const checks: Check[] = [];
  if (config.maxErrorRate !== undefined) checks.push(check('error_rate', canary.errorRate, config.maxErrorRate, canary.errorRate <= config.maxErrorRate));
  if (config.maxErrorRateIncrease !== undefined) {
    const base = baseline.requests > 0 ? baseline.errorRate : 0;
    const increase = canary.errorRate - base;
    checks.push(check('error_rate_increase', increase, config.maxErrorRateIncrease, increase <= config.maxErrorRateIncrease));
  }
  if (config.maxP95Ms !== undefined) checks.push(check('latency_p95_ms', canary.p95Ms, config.maxP95Ms, canary.p95Ms <= config.maxP95Ms));
  if (config.maxP99Ms !== undefined) checks.push(check('latency_p99_ms', canary.p99Ms, config.maxP99Ms, canary.p99Ms <= config.maxP99Ms));
  if (config.maxLatencyRatio !== undefined && baseline.requests >= config.minRequests && baseline.p95Ms > 0) {
    const ratio = canary.p95Ms / baseline.p95Ms;
    checks.push(check('latency_p95_ratio', ratio, config.maxLatencyRatio, ratio <= config.maxLatencyRatio));
  }
  if (config.minQuality !== undefined && canary.qualitySamples >= config.minQualitySamples) {
    checks.push(check('quality', canary.quality, config.minQuality, canary.quality >= config.minQuality));
  }
  const outcome = checks.every((c) => c.passed) ? 'successful' : 'failed';
  return { at, outcome, checks, canary, baseline };
}

export type CanaryAction = 'pause' | 'resume' | 'promote' | 'promote_full' | 'abort';

/**
 * One model's canary: its policy and state, advanced by `tick(now)` once per analysis interval
 * and by operator actions. Pure with respect to time (the caller passes `now`), so tests drive
 * it with a clock of their own.
 */
export class CanaryController {
  constructor(
    readonly model: string,
    readonly policy: CanaryPolicy,
    public state: CanaryState,
    private readonly observations: VersionObservations,
    private readonly emit: (event: CanaryEvent) => void = () => undefined,
  ) {}

  get active(): boolean {
    return this.state.phase === 'progressing' || this.state.phase === 'paused';
  }

  private record(measurement: Measurement): void {
    this.state.measurements.push(measurement);
    if (this.state.measurements.length > KEPT_MEASUREMENTS) this.state.measurements.splice(0, this.state.measurements.length - KEPT_MEASUREMENTS);
  }

  private event(action: CanaryEvent['action'], now: number, reason?: string): void {
    this.emit({ action, at: now, weight: this.state.weight, ...(reason !== undefined ? { reason } : {}) });
  }

  private rollBack(now: number, reason: string): void {
    this.state.phase = 'rolled_back';
    this.state.weight = 0;
    this.state.reason = reason;
    this.state.updatedAt = now;
    this.event('canary.rolled_back', now, reason);
  }

  private enterStep(index: number, now: number): void {
    const step = this.policy.steps[index]!;
    this.state.stepIndex = index;
    this.state.weight = step.weight;
    this.state.stepStartedAt = now;
    this.state.stepSuccesses = 0;
    this.state.updatedAt = now;
    if (step.weight >= 100) {
      this.state.phase = 'promoted';
      delete this.state.pausedBy;
      this.event('canary.promoted', now);
    } else {
      this.event('canary.step', now);
    }
  }

  /**
   * Takes one measurement of the window since the last one, then applies the limits and the
   * steps. `peers` adds other replicas' requests of the window, by version.
   */
  tick(now: number, peers?: ReadonlyMap<string, PeerWindow> | Error): Measurement | undefined {
    if (!this.active) return undefined;
    const from = this.state.measuredUntil;
    let measurement: Measurement;
    try {
      // Other replicas' counters could not be read: no measurement of the whole traffic.
      if (peers instanceof Error) throw new Error(`reading other replicas' counters failed: ${peers.message}`);
      const canary = this.observations.summary(this.model, this.policy.canary, from, now, peers?.get(this.policy.canary));
      const baseline = this.observations.summary(this.model, this.policy.baseline, from, now, peers?.get(this.policy.baseline));
      measurement = analyse(this.policy.analysis, canary, baseline, now);
    } catch (error) {
      measurement = { at: now, outcome: 'error', checks: [], message: error instanceof Error ? error.message : String(error) };
    }
    this.state.measuredUntil = now;
    this.record(measurement);
    const a = this.policy.analysis;
    const s = this.state;
    s.updatedAt = now;
    if (measurement.outcome === 'error') {
      s.consecutiveErrors += 1;
      if (s.consecutiveErrors > a.consecutiveErrorLimit) this.rollBack(now, `${s.consecutiveErrors} measurements in a row could not be taken (consecutive_error_limit ${a.consecutiveErrorLimit}): ${measurement.message}`);
      return measurement;
    }
    s.consecutiveErrors = 0;
    if (measurement.outcome === 'failed') {
      s.failed += 1;
      if (s.failed > a.failureLimit) {
        const failing = measurement.checks.filter((c) => !c.passed).map((c) => `${c.name} ${round(c.value)} beyond ${c.limit}`);
        this.rollBack(now, `${s.failed} failed measurements (failure_limit ${a.failureLimit}); last: ${failing.join(', ')}`);
      }
      return measurement;
    }
    if (measurement.outcome === 'inconclusive') {
      s.inconclusive += 1;
      if (s.inconclusive > a.inconclusiveLimit && s.phase === 'progressing') {
        s.phase = 'paused';
        s.pausedBy = 'analysis';
        s.reason = `${s.inconclusive} inconclusive measurements (inconclusive_limit ${a.inconclusiveLimit}): ${measurement.message}`;
        this.event('canary.paused', now, s.reason);
      }
      return measurement;
    }
    s.stepSuccesses += 1;
    if (s.phase === 'progressing' && now - s.stepStartedAt >= this.policy.steps[s.stepIndex]!.pauseMs) {
      this.enterStep(Math.min(s.stepIndex + 1, this.policy.steps.length - 1), now);
    }
    return measurement;
  }

  /** Operator actions, as `kubectl argo rollouts pause|promote [--full]|abort` do. */
  act(action: CanaryAction, now: number, reason?: string): void {
    const s = this.state;
    if (action === 'abort') {
      if (!this.active) throw new Error(`the canary of model '${this.model}' is ${s.phase}; nothing to abort`);
      s.phase = 'aborted';
      s.weight = 0;
      s.reason = reason ?? 'aborted by an operator';
      s.updatedAt = now;
      this.event('canary.aborted', now, s.reason);
      return;
    }
    if (!this.active) throw new Error(`the canary of model '${this.model}' is ${s.phase}; start a new one`);
    if (action === 'pause') {
      s.phase = 'paused';
      s.pausedBy = 'operator';
      s.reason = reason ?? 'paused by an operator';
      s.updatedAt = now;
      this.event('canary.paused', now, s.reason);
    } else if (action === 'resume') {
      s.phase = 'progressing';
      s.inconclusive = 0;
      delete s.pausedBy;
      delete s.reason;
      s.stepStartedAt = now;
      s.updatedAt = now;
      this.event('canary.resumed', now);
    } else {
      s.phase = 'progressing';
      s.inconclusive = 0;
      delete s.pausedBy;
      delete s.reason;
      this.enterStep(action === 'promote_full' ? this.policy.steps.length - 1 : Math.min(s.stepIndex + 1, this.policy.steps.length - 1), now);
      if (action === 'promote_full' && (s.phase as CanaryPhase) !== 'promoted') {
        s.weight = 100;
        s.phase = 'promoted';
        this.event('canary.promoted', now);
      }
    }
  }
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}
