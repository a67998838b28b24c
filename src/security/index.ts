/**
 * The security layer assembled from the `security:` configuration: the pipeline policies in
 * their order, the stores behind them, TLS, and what the server must say at start.
 *
 * Chain order (first runs first):
 *   authentication → rate-limit → authorization → audit → (the rest of the chain)
 * Authentication sets ctx.identity; rate limiting keys on it (and refuses floods before any
 * permission lookup); authorisation refuses what the identity may not do; audit records the
 * writes that got through, with their outcome.
 */
import type { ServerCredentials } from '@grpc/grpc-js';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Policy } from '../pipeline/types.js';
import type { SqlDriver } from '../registry/sql/driver.js';
import { ArtifactCipher } from './artifacts/cipher.js';
import { checkpointSigner } from './audit/keys.js';
import { AuditLog } from './audit/log.js';
import { AuditPolicy } from './audit/policy.js';
import { ApiKeyStore } from './authn/api-keys.js';
import { JwtVerifier } from './authn/jwt.js';
import { AuthenticationPolicy } from './authn/policy.js';
import { AuthorizationPolicy } from './authz/policy.js';
import { isLoopbackHost, type SecurityConfig } from './config.js';
import { openSecurityDatabase } from './database.js';
import { ConcurrencyLimiter, SharedRateLimiter } from './ratelimit/limiter.js';
import { RateLimitPolicy } from './ratelimit/policy.js';
import { readSecret, requireLength } from './secrets.js';
import { grpcServerCredentials, ReloadingTls, tlsFilesFromConfig } from './tls/options.js';

export interface SecurityLogger {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export interface SecurityDeps {
  /** The registry database URL (keys and audit records live there). */
  registryUrl?: string;
  logger: SecurityLogger;
  metrics?: MetricsRegistry;
  env?: NodeJS.ProcessEnv;
}

export interface SecurityLayer {
  /** In chain order; empty when everything is off. */
  policies: Policy[];
  authentication?: AuthenticationPolicy;
  rateLimit?: RateLimitPolicy;
  authorization?: AuthorizationPolicy;
  audit?: AuditPolicy;
  apiKeys?: ApiKeyStore;
  auditLog?: AuditLog;
  limiter?: SharedRateLimiter;
  /** HTTPS options and reload (call `tls.attach(server)` once the server exists). */
  tls?: ReloadingTls;
  /** grpc-js credentials that follow the same files. */
  grpcCredentials?: () => ServerCredentials;
  /** Pass to openRegistry({ artifactCipher }) to encrypt artifacts at rest. */
  artifactCipher?: ArtifactCipher;
  close(): Promise<void>;
}

export async function createSecurityLayer(config: SecurityConfig, deps: SecurityDeps): Promise<SecurityLayer> {
  const env = deps.env ?? process.env;
  const log = deps.logger;
  const layer: SecurityLayer = { policies: [], close: async () => undefined };
  const closers: Array<() => Promise<void> | void> = [];
  let db: SqlDriver | undefined;
  const database = async (): Promise<SqlDriver> => {
    if (db === undefined) {
      db = await openSecurityDatabase(deps.registryUrl);
      const opened = db;
      closers.push(() => opened.close());
    }
    return db;
  };

  try {
    if (config.artifacts.encryption_key !== undefined) {
      layer.artifactCipher = new ArtifactCipher(readSecret(config.artifacts.encryption_key, 'security.artifacts.encryption_key', env));
    }
    if (config.tls !== undefined) {
      const files = tlsFilesFromConfig(config.tls);
      const tls = new ReloadingTls(files, {
        onReload: (fingerprint) => log.info({ fingerprint }, 'TLS certificate reloaded'),
        onError: (error) => log.error({ err: error.message }, 'TLS files changed but cannot be used; the previous certificate stays in service'),
      });
      layer.tls = tls;
      layer.grpcCredentials = () => grpcServerCredentials(files);
      if (config.tls.watch) closers.push(() => tls.close());
    }

    if (config.audit.enabled) {
      const signingKey = checkpointSigner(config.audit, env)!;
      const auditLog = new AuditLog(await database(), { signingKey, checkpointEvery: config.audit.checkpoint_every });
      auditLog.startCheckpoints(config.audit.checkpoint_interval_ms, (error) => log.error({ err: String(error) }, 'audit checkpoint failed'));
      closers.push(() => auditLog.stopCheckpoints());
      layer.auditLog = auditLog;
      layer.audit = new AuditPolicy({
        log: auditLog,
        authFailures: config.audit.auth_failures,
        onError: (error, entry) => log.error({ err: String(error), action: entry.action, actor: entry.actor }, 'audit record could not be written'),
      });
    }

    if (!config.enabled) {
      if (layer.audit !== undefined) layer.policies.push(layer.audit);
      layer.close = closeAll(closers);
      return layer;
    }

    const authn = config.authentication;
    if (authn.api_keys.enabled) {
      const pepper = requireLength(readSecret(authn.api_keys.pepper!, 'security.authentication.api_keys.pepper', env), 32, 'security.authentication.api_keys.pepper');
      const audit = layer.auditLog;
      layer.apiKeys = new ApiKeyStore(await database(), {
        pepper,
        cacheTtlMs: authn.api_keys.cache_ttl_ms,
        cacheMaxEntries: authn.api_keys.cache_max_entries,
        ...(audit !== undefined
          ? { onChange: async (c) => void (await audit.append({ actor: c.actor, action: c.action, target: `key/${c.id}`, outcome: 'ok', details: c.details })) }
          : {}),
      });
    }
    const jwt = authn.jwt === undefined ? undefined : JwtVerifier.fromConfig(authn.jwt);
    const openActions = config.authorization.open_actions;
    layer.authentication = new AuthenticationPolicy({
      required: authn.required,
      anonymousRoles: authn.anonymous_roles,
      maxHeaderBytes: authn.max_header_bytes,
      ...(layer.apiKeys !== undefined ? { apiKeys: layer.apiKeys } : {}),
      ...(jwt !== undefined ? { jwt } : {}),
      ...(authn.mtls.enabled ? { mtls: { roles: authn.mtls.roles, defaultRoles: authn.mtls.default_roles } } : {}),
      openActions,
      onFailure: (ctx, failure) => {
        log.warn({ reqId: ctx.requestId, method: failure.method, reason: failure.why, ...(failure.keyId !== undefined ? { keyId: failure.keyId } : {}) }, 'authentication failed');
        layer.audit?.recordAuthFailure(ctx, failure);
      },
    });
    layer.policies.push(layer.authentication);

    const rl = config.rate_limit;
    if (rl.enabled) {
      const limiter = new SharedRateLimiter({
        ratePerSecond: rl.rate_per_second,
        burst: rl.burst,
        keyPrefix: rl.key_prefix,
        redisTimeoutMs: rl.redis_timeout_ms,
        redisRetryMs: rl.redis_retry_ms,
        leaseMs: rl.lease_ms,
        maxLeaseFraction: rl.max_lease_share,
        log,
        ...(rl.redis_url !== undefined ? { redisUrl: rl.redis_url } : {}),
        ...(deps.metrics !== undefined ? { metrics: deps.metrics } : {}),
      });
      closers.push(() => limiter.close());
      layer.limiter = limiter;
      layer.rateLimit = new RateLimitPolicy({ limiter, perModel: rl.per_model, ...(rl.max_concurrent > 0 ? { concurrency: new ConcurrencyLimiter(rl.max_concurrent) } : {}) });
      layer.policies.push(layer.rateLimit);
    }

    layer.authorization = new AuthorizationPolicy({
      roles: config.authorization.roles,
      openActions,
      onDenied: (ctx, denial) => {
        log.warn({ reqId: ctx.requestId, subject: denial.subject, permission: denial.permission, action: denial.action, model: denial.model }, 'permission denied');
        layer.audit?.recordDenial(ctx, denial);
      },
    });
    layer.policies.push(layer.authorization);
    if (layer.audit !== undefined) layer.policies.push(layer.audit);
    layer.close = closeAll(closers);
    return layer;
  } catch (error) {
    await closeAll(closers)();
    throw error;
  }
}

function closeAll(closers: Array<() => Promise<void> | void>): () => Promise<void> {
  return async () => {
    for (const close of closers.reverse()) await close();
    closers.length = 0;
  };
}

/**
 * What the server must log at start, one warning per line: listening beyond loopback without
 * authentication (anyone who reaches the port can infer, load, unload and move aliases), or
 * with authentication but without TLS (credentials cross the network in clear text).
 */
export function startupWarnings(config: SecurityConfig, host: string): string[] {
  if (isLoopbackHost(host)) return [];
  const warnings: string[] = [];
  if (!config.enabled) {
    warnings.push(
      `listening on ${host} without authentication: anyone who can reach the port can run inference, load and unload models and change the registry; set security.enabled (see "Securing inferd" in the README)`,
    );
  } else if (config.tls === undefined) {
    warnings.push(`listening on ${host} with authentication but without TLS: API keys and tokens cross the network in clear text; set security.tls`);
  }
  return warnings;
}

export { checkSecurityConfig, SecurityConfigSchema, type SecurityConfig } from './config.js';
export { setPeerCertificate, peerFromTlsSocket, peerFromGrpcAuthContext, type PeerCertificate } from './authn/mtls.js';
