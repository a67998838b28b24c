/**
 * The authorisation policy: runs after authentication and checks that one of the caller's roles
 * grants the permission the call needs, for the model it concerns, and that the model is inside
 * the caller's own scope (an API key limited to `fraud-*`). Refusals are PERMISSION_DENIED with
 * a fixed message.
 */
import { InferdError } from '../../core/errors.js';
import type { Identity, InferenceRequest, InferenceResponse, RequestContext } from '../../core/types.js';
import type { ControlCall, NextControl, NextInfer, Policy } from '../../pipeline/types.js';
import type { RoleConfig } from '../config.js';
import { modelScopeOf } from '../authn/policy.js';
import { globToRegExp, INFER_PERMISSION, matchesAny, permissionFor, PERMISSIONS, type Grant, type Permission } from './permissions.js';

export const PERMISSION_DENIED = 'permission denied';

export interface Denial {
  subject: string;
  permission: Permission;
  model?: string;
  action: string;
}

export interface AuthorizationOptions {
  roles: Record<string, RoleConfig>;
  openActions?: readonly string[];
  onDenied?: (ctx: RequestContext, denial: Denial) => void;
}

const ADMIN_GRANT: Grant = { permissions: new Set(PERMISSIONS) };

export class RoleTable {
  private readonly grants = new Map<string, Grant>();

  constructor(roles: Record<string, RoleConfig>) {
    this.grants.set('admin', ADMIN_GRANT);
    for (const [name, role] of Object.entries(roles)) {
      const grant: Grant = { permissions: new Set(role.permissions) };
      if (role.models !== undefined) grant.models = role.models.map(globToRegExp);
      this.grants.set(name, grant);
    }
  }

  /** A key's model scope compiled once per scope (the key record is shared by its requests). */
  private readonly scopes = new WeakMap<readonly string[], RegExp[]>();

  private scopePatterns(scope: readonly string[]): RegExp[] {
    let compiled = this.scopes.get(scope);
    if (compiled === undefined) {
      compiled = scope.map(globToRegExp);
      this.scopes.set(scope, compiled);
    }
    return compiled;
  }

  has(role: string): boolean {
    return this.grants.has(role);
  }

  /** Whether `identity` may use `permission` on `model` (undefined: a call about no model). */
  allows(identity: Identity, permission: Permission, model: string | undefined): boolean {
    const scope = modelScopeOf(identity);
    if (scope !== undefined) {
      if (model !== undefined ? !matchesAny(model, this.scopePatterns(scope)) : permission !== 'metadata') return false;
    }
    for (const role of identity.roles) {
      const grant = this.grants.get(role);
      if (grant === undefined) continue;
      if (!grant.permissions.has(permission) && !grant.permissions.has('admin')) continue;
      if (grant.models === undefined) return true;
      // A grant limited to some models covers model-less calls only for reading metadata.
      if (model === undefined ? permission === 'metadata' : matchesAny(model, grant.models)) return true;
    }
    return false;
  }
}

export class AuthorizationPolicy implements Policy {
  readonly name = 'authorization';
  private readonly table: RoleTable;
  private readonly open: ReadonlySet<string>;

  constructor(private readonly options: AuthorizationOptions) {
    this.table = new RoleTable(options.roles);
    this.open = new Set(options.openActions ?? []);
  }

  // Not async: the check is synchronous, so an allowed request costs no extra promise.
  infer(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    try {
      this.check(ctx, INFER_PERMISSION, ctx.model, 'infer');
    } catch (error) {
      return Promise.reject(error);
    }
    return next(ctx, request);
  }

  async control(ctx: RequestContext, call: ControlCall, next: NextControl): Promise<unknown> {
    // A request the door could not decode carries its own error; once authenticated, the caller may learn it.
    if (call.action === 'request.rejected') {
      if (ctx.identity === undefined) throw new InferdError('UNAUTHENTICATED', 'authentication required');
      return next(ctx, call);
    }
    if (!this.open.has(call.action)) this.check(ctx, permissionFor(call.action, call.write), call.model ?? ctx.model, call.action);
    return next(ctx, call);
  }

  private check(ctx: RequestContext, permission: Permission, model: string | undefined, action: string): void {
    const identity = ctx.identity;
    // Without an identity the chain is misassembled: refuse rather than serve.
    if (identity === undefined) throw new InferdError('UNAUTHENTICATED', 'authentication required');
    if (this.table.allows(identity, permission, model)) return;
    this.options.onDenied?.(ctx, { subject: identity.subject, permission, action, ...(model !== undefined ? { model } : {}) });
    throw new InferdError('PERMISSION_DENIED', PERMISSION_DENIED);
  }
}
