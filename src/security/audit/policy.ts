/**
 * The audit policy: every control call that changes state is recorded with its caller, target
 * and outcome (done, refused, failed) after it ran; authentication failures and permission
 * denials are recorded through `recordAuthFailure` / `recordDenial` (wired as the
 * authentication and authorisation policies' callbacks). Failure floods are capped so a
 * credential-stuffing run cannot fill the database: past the cap they are counted and the
 * count is written as one record when the flood ends.
 */
import { toInferdError } from '../../core/errors.js';
import type { RequestContext } from '../../core/types.js';
import type { ControlCall, NextControl, Policy } from '../../pipeline/types.js';
import type { AuthFailure } from '../authn/policy.js';
import type { Denial } from '../authz/policy.js';
import type { AuditEntry, AuditLog } from './log.js';

export interface AuditPolicyOptions {
  log: AuditLog;
  /** Record authentication failures (default true). */
  authFailures?: boolean;
  /** Failure records per second before they are only counted. Default 10. */
  failuresPerSecond?: number;
  /** Where an append that failed is reported (the call itself has already happened). */
  onError?: (error: unknown, entry: AuditEntry) => void;
}

export function targetOf(model: string | undefined, version: string | undefined, fallback = '-'): string {
  if (model === undefined) return fallback;
  return version === undefined ? `model/${model}` : `model/${model}@${version}`;
}

export function actorOf(ctx: RequestContext): string {
  return ctx.identity?.subject ?? 'anonymous';
}

export class AuditPolicy implements Policy {
  readonly name = 'audit';
  private windowStart = 0;
  private inWindow = 0;
  private suppressed = 0;

  constructor(private readonly options: AuditPolicyOptions) {}

  /** The pipeline hook: only writes are recorded; reads pass straight through. */
  async control(ctx: RequestContext, call: ControlCall, next: NextControl): Promise<unknown> {
    if (!call.write) return next(ctx, call);
    const entry = (outcome: string): AuditEntry => ({
      actor: actorOf(ctx),
      action: call.action,
      target: targetOf(call.model ?? ctx.model, call.version),
      outcome,
      details: { request_id: ctx.requestId, ...(ctx.door !== undefined ? { door: ctx.door } : {}), ...(call.details ?? {}) },
    });
    let result: unknown;
    try {
      result = await next(ctx, call);
    } catch (error) {
      const e = toInferdError(error);
      const outcome = e.code === 'PERMISSION_DENIED' || e.code === 'UNAUTHENTICATED' ? 'denied' : `error:${e.code}`;
      await this.write(entry(outcome));
      throw error;
    }
    await this.write(entry('ok'));
    return result;
  }

  recordAuthFailure(ctx: RequestContext, failure: AuthFailure): void {
    if (this.options.authFailures === false || !this.admit()) return;
    void this.write({
      actor: failure.keyId !== undefined ? `key:${failure.keyId}` : 'unknown',
      action: 'auth.failure',
      target: targetOf(ctx.model, ctx.version),
      outcome: 'denied',
      details: { method: failure.method, reason: failure.why, request_id: ctx.requestId, ...(ctx.door !== undefined ? { door: ctx.door } : {}) },
    });
  }

  recordDenial(ctx: RequestContext, denial: Denial): void {
    if (!this.admit()) return;
    void this.write({
      actor: denial.subject,
      action: 'auth.denied',
      target: targetOf(denial.model, ctx.version),
      outcome: 'denied',
      details: { permission: denial.permission, action: denial.action, request_id: ctx.requestId },
    });
  }

  private admit(): boolean {
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      if (this.suppressed > 0) {
        const count = this.suppressed;
        this.suppressed = 0;
        void this.write({ actor: 'system', action: 'auth.failure.suppressed', target: '-', outcome: 'denied', details: { count } });
      }
      this.windowStart = now;
      this.inWindow = 0;
    }
    if (this.inWindow >= (this.options.failuresPerSecond ?? 10)) {
      this.suppressed += 1;
      return false;
    }
    this.inWindow += 1;
    return true;
  }

  private async write(entry: AuditEntry): Promise<void> {
    try {
      await this.options.log.append(entry);
    } catch (error) {
      this.options.onError?.(error, entry);
    }
  }
}
