/**
 * The authentication policy: reads the caller's credentials from `Authorization` (`Bearer
 * <jwt>`, `Bearer inferd_...`, `ApiKey inferd_...`) or `X-API-Key` — REST headers and gRPC
 * metadata alike through `ctx.header` — or a verified client certificate, and sets
 * `ctx.identity`. Every refusal is UNAUTHENTICATED with one of two fixed messages; the real
 * reason goes to `onFailure` (log line, metric, audit record) and never to the caller.
 */
import { InferdError } from '../../core/errors.js';
import type { Identity, InferenceRequest, InferenceResponse, RequestContext } from '../../core/types.js';
import type { ControlCall, NextControl, NextInfer, Policy } from '../../pipeline/types.js';
import { looksLikeApiKey, type ApiKeyRecord, type ApiKeyStore } from './api-keys.js';
import { KeysUnavailable, TokenRejected, type JwtVerifier } from './jwt.js';
import { certificateIdentity, peerCertificateOf } from './mtls.js';

/** An identity with the model scope an API key may carry. */
export interface ScopedIdentity extends Identity {
  /** Model names or patterns this caller is limited to, whatever its roles say. */
  models?: readonly string[];
}

export function modelScopeOf(identity: Identity | undefined): readonly string[] | undefined {
  return (identity as ScopedIdentity | undefined)?.models;
}

export interface AuthFailure {
  /** What was presented: 'none', 'api_key', 'jwt', 'mtls', 'malformed'. */
  method: string;
  /** The real reason, for operators only. */
  why: string;
  /** Public id of the key tried, when one was. */
  keyId?: string;
}

export interface AuthenticationOptions {
  required: boolean;
  anonymousRoles?: string[];
  maxHeaderBytes?: number;
  apiKeys?: ApiKeyStore;
  jwt?: JwtVerifier;
  mtls?: { roles: Record<string, string[]>; defaultRoles: string[] };
  /** Control actions that need no credentials (probes, scrapers). */
  openActions?: readonly string[];
  onFailure?: (ctx: RequestContext, failure: AuthFailure) => void;
}

export const AUTHENTICATION_REQUIRED = 'authentication required';
export const INVALID_CREDENTIALS = 'invalid credentials';

// Visible ASCII only: a header with control characters or spaces inside a token is malformed.
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
// `ApiKey inferd_...` or `Bearer inferd_...`: the forms whose verification can be remembered.
const CACHEABLE_AUTHORIZATION = /^(?:apikey|bearer) +(inferd_[\x21-\x7e]+)\s*$/i;

class Refusal extends InferdError {
  constructor(
    message: string,
    readonly failure: AuthFailure,
  ) {
    super('UNAUTHENTICATED', message);
  }
}

export class AuthenticationPolicy implements Policy {
  readonly name = 'authentication';
  private readonly open: ReadonlySet<string>;
  private readonly maxHeaderBytes: number;
  private readonly anonymous: Identity;

  constructor(private readonly options: AuthenticationOptions) {
    this.open = new Set(options.openActions ?? []);
    this.maxHeaderBytes = options.maxHeaderBytes ?? 8192;
    this.anonymous = { subject: 'anonymous', method: 'anonymous', roles: [...(options.anonymousRoles ?? [])] };
  }

  infer(ctx: RequestContext, request: InferenceRequest, next: NextInfer): Promise<InferenceResponse> {
    // A key already verified on this replica is known without a promise; anything else takes the full path.
    const known = this.knownApiKey(ctx);
    if (known !== undefined) {
      ctx.identity = known;
      return next(ctx, request);
    }
    return this.authenticate(ctx).then(() => next(ctx, request));
  }

  private knownApiKey(ctx: RequestContext): Identity | undefined {
    const store = this.options.apiKeys;
    if (store === undefined || ctx.header === undefined) return undefined;
    const apiKeyHeader = ctx.header('x-api-key');
    const authorization = ctx.header('authorization');
    let presented: string | undefined;
    if (authorization === undefined) presented = apiKeyHeader?.trim();
    else if (apiKeyHeader === undefined) presented = CACHEABLE_AUTHORIZATION.exec(authorization)?.[1];
    if (presented === undefined || presented.length > this.maxHeaderBytes) return undefined;
    const record = store.authenticateCached(presented);
    return record === undefined ? undefined : this.apiKeyIdentity(record);
  }

  /** One identity object per key record, so the identities of a key's requests are shared. */
  private readonly identities = new WeakMap<ApiKeyRecord, Identity>();

  private apiKeyIdentity(record: ApiKeyRecord): Identity {
    let identity = this.identities.get(record);
    if (identity === undefined) {
      const scoped: ScopedIdentity = { subject: `key:${record.id}`, method: 'api_key', roles: record.roles };
      if (record.models !== null) scoped.models = record.models;
      identity = scoped;
      this.identities.set(record, identity);
    }
    return identity;
  }

  async control(ctx: RequestContext, call: ControlCall, next: NextControl): Promise<unknown> {
    if (this.open.has(call.action)) return next(ctx, call);
    await this.authenticate(ctx);
    return next(ctx, call);
  }

  /** Sets ctx.identity or throws UNAUTHENTICATED. */
  async authenticate(ctx: RequestContext): Promise<void> {
    try {
      ctx.identity = await this.identify(ctx);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      ctx.responseHeaders ??= {};
      ctx.responseHeaders['www-authenticate'] = 'Bearer realm="inferd"';
      this.options.onFailure?.(ctx, error.failure);
      throw new InferdError('UNAUTHENTICATED', error.message);
    }
  }

  private async identify(ctx: RequestContext): Promise<Identity> {
    const authorization = ctx.header?.('authorization');
    const apiKeyHeader = ctx.header?.('x-api-key');
    if (authorization !== undefined && apiKeyHeader !== undefined) throw malformed('both Authorization and X-API-Key were sent');
    if (authorization !== undefined) return this.fromAuthorization(authorization);
    if (apiKeyHeader !== undefined) {
      this.checkSize(apiKeyHeader);
      return this.fromApiKey(apiKeyHeader.trim());
    }
    if (this.options.mtls !== undefined) {
      const peer = peerCertificateOf(ctx);
      if (peer !== undefined) {
        const found = certificateIdentity(peer, this.options.mtls.roles, this.options.mtls.defaultRoles);
        if (found === undefined) throw new Refusal(INVALID_CREDENTIALS, { method: 'mtls', why: 'client certificate not verified or without a name' });
        return { subject: found.subject, method: 'mtls', roles: found.roles };
      }
    }
    if (!this.options.required) return this.anonymous;
    throw new Refusal(AUTHENTICATION_REQUIRED, { method: 'none', why: 'no credentials' });
  }

  private checkSize(value: string): void {
    if (value.length > this.maxHeaderBytes) throw malformed(`credential header of ${value.length} bytes exceeds ${this.maxHeaderBytes}`);
  }

  private async fromAuthorization(header: string): Promise<Identity> {
    this.checkSize(header);
    const match = /^([A-Za-z]+) +(\S+)\s*$/.exec(header);
    if (match === null) throw malformed('Authorization is not "<scheme> <credentials>"');
    const scheme = match[1]!.toLowerCase();
    const credentials = match[2]!;
    if (!TOKEN_CHARS.test(credentials)) throw malformed('credentials hold characters outside visible ASCII');
    if (scheme === 'apikey' || (scheme === 'bearer' && looksLikeApiKey(credentials))) return this.fromApiKey(credentials);
    if (scheme === 'bearer') return this.fromJwt(credentials);
    throw malformed(`unsupported Authorization scheme '${scheme.slice(0, 16)}'`);
  }

  private async fromApiKey(presented: string): Promise<Identity> {
    const keyId = /^inferd_([0-9a-f]{16})_/.exec(presented)?.[1];
    if (this.options.apiKeys === undefined) throw new Refusal(INVALID_CREDENTIALS, { method: 'api_key', why: 'API keys are not accepted' });
    const record = await this.options.apiKeys.authenticate(presented);
    if (record === undefined) {
      throw new Refusal(INVALID_CREDENTIALS, { method: 'api_key', why: 'unknown, wrong, expired, revoked or rotated-out key', ...(keyId !== undefined ? { keyId } : {}) });
    }
    return this.apiKeyIdentity(record);
  }

  private async fromJwt(token: string): Promise<Identity> {
    if (this.options.jwt === undefined) throw new Refusal(INVALID_CREDENTIALS, { method: 'jwt', why: 'JWT bearer tokens are not accepted' });
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) throw malformed('bearer token is not a compact JWS');
    try {
      const verified = await this.options.jwt.verify(token);
      return { subject: verified.subject, method: 'jwt', roles: verified.roles };
    } catch (error) {
      if (error instanceof TokenRejected) throw new Refusal(INVALID_CREDENTIALS, { method: 'jwt', why: error.why });
      if (error instanceof KeysUnavailable) {
        // The identity provider's keys cannot be fetched: 503, so clients retry, not re-login.
        throw new InferdError('UNAVAILABLE', 'token verification is temporarily unavailable; retry later', { retryAfterSeconds: 1, cause: error });
      }
      throw error;
    }
  }
}

function malformed(why: string): Refusal {
  return new Refusal(INVALID_CREDENTIALS, { method: 'malformed', why });
}
