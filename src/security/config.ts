/**
 * The `security:` configuration block. Everything is off by default so the quick start needs no
 * keys; one block turns authentication, authorisation, rate limits, TLS, the audit log and
 * artifact encryption on. The schema fills defaults and names unknown keys; `checkSecurityConfig`
 * adds the checks that span several keys (a JWT section needs keys, TLS needs a key file...).
 */
import Type, { type Static } from 'typebox';
import { ConfigError } from '../config/validate.js';
import type { Permission } from './authz/permissions.js';

const Strings = (options: Record<string, unknown> = {}) => Type.Array(Type.String({ minLength: 1 }), { default: [], ...options });

/** Where a secret comes from: a file (first line, trimmed) or an environment variable. */
const SecretSource = Type.Object(
  {
    file: Type.Optional(Type.String({ minLength: 1 })),
    env: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);

const RoleSchema = Type.Object(
  {
    permissions: Type.Array(
      Type.Union([
        Type.Literal('infer'),
        Type.Literal('metadata'),
        Type.Literal('feedback'),
        Type.Literal('models:load'),
        Type.Literal('registry:write'),
        Type.Literal('traffic:write'),
        Type.Literal('keys:write'),
        Type.Literal('audit:read'),
        Type.Literal('admin'),
      ]),
      { minItems: 1 },
    ),
    /** Model names or glob patterns (`fraud-*`) the permissions apply to; absent: every model. */
    models: Type.Optional(Strings({ minItems: 1 })),
  },
  { additionalProperties: false },
);

export const SecurityConfigSchema = Type.Object(
  {
    /** Master switch: off (default) runs every request as an anonymous caller with no checks. */
    enabled: Type.Boolean({ default: false }),
    authentication: Type.Object(
      {
        /** Refuse requests without credentials (401). Off: they run with `anonymous_roles`. */
        required: Type.Boolean({ default: true }),
        /** Roles of an unauthenticated caller when `required` is off. */
        anonymous_roles: Strings(),
        /** Authorization / X-API-Key values longer than this are refused before any parsing. */
        max_header_bytes: Type.Integer({ minimum: 256, maximum: 65536, default: 8192 }),
        api_keys: Type.Object(
          {
            enabled: Type.Boolean({ default: true }),
            /** Server secret mixed into every stored key hash (HMAC-SHA256); at least 32 bytes. */
            pepper: Type.Optional(SecretSource),
            /** How long a looked-up key is trusted before the database is asked again (revocation delay across replicas). */
            cache_ttl_ms: Type.Integer({ minimum: 0, maximum: 300_000, default: 5000 }),
            cache_max_entries: Type.Integer({ minimum: 1, default: 10_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
        jwt: Type.Optional(
          Type.Object(
            {
              /** JWKS endpoint of the identity provider; keys are cached and refetched on an unknown `kid`. */
              jwks_url: Type.Optional(Type.String({ minLength: 1 })),
              /** PEM public key files (SPKI or X.509 certificate), instead of or besides a JWKS URL. */
              public_key_files: Strings(),
              issuer: Type.String({ minLength: 1 }),
              audience: Type.String({ minLength: 1 }),
              algorithms: Type.Array(Type.Union([Type.Literal('RS256'), Type.Literal('ES256'), Type.Literal('EdDSA')]), {
                minItems: 1,
                default: ['RS256', 'ES256', 'EdDSA'],
              }),
              clock_skew_s: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
              /** Claim holding the caller's roles (an array of strings, or a space-separated string). */
              roles_claim: Type.String({ minLength: 1, default: 'roles' }),
              /** Verified tokens kept so a repeat costs a map lookup; each entry expires with its token. */
              cache_max_entries: Type.Integer({ minimum: 0, default: 10_000 }),
              jwks_timeout_ms: Type.Integer({ minimum: 100, default: 5000 }),
              /** A JWKS older than this is refetched. */
              jwks_max_age_ms: Type.Integer({ minimum: 1000, default: 600_000 }),
              /** Least time between two refetches triggered by unknown `kid`s. */
              jwks_cooldown_ms: Type.Integer({ minimum: 0, default: 30_000 }),
            },
            { additionalProperties: false },
          ),
        ),
        mtls: Type.Object(
          {
            /** Accept a verified client certificate as credentials (needs `tls.client_auth`). */
            enabled: Type.Boolean({ default: false }),
            /** Roles per certificate subject (CN) or SAN URI / DNS name. */
            roles: Type.Record(Type.String(), Type.Array(Type.String({ minLength: 1 })), { default: {} }),
            /** Roles of a verified certificate not listed above. */
            default_roles: Strings(),
          },
          { additionalProperties: false, default: {} },
        ),
      },
      { additionalProperties: false, default: {} },
    ),
    authorization: Type.Object(
      {
        /** Role name → permissions, optionally scoped to models. `admin` is predefined. */
        roles: Type.Record(Type.String({ minLength: 1 }), RoleSchema, { default: {} }),
        /** Actions anyone may call without credentials: probes and scrapers by default. */
        open_actions: Strings({ default: ['server.live', 'server.ready', 'server.startup', 'server.metrics'] }),
      },
      { additionalProperties: false, default: {} },
    ),
    rate_limit: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        /** Shared state for all replicas; without it each replica limits on its own. */
        redis_url: Type.Optional(Type.String({ minLength: 1 })),
        /** Sustained requests per second per identity. */
        rate_per_second: Type.Number({ exclusiveMinimum: 0, default: 50 }),
        /** Requests that may arrive at once after a quiet period (the bucket size). */
        burst: Type.Integer({ minimum: 1, default: 100 }),
        /** Separate buckets per identity and model, rather than per identity. */
        per_model: Type.Boolean({ default: false }),
        /** Requests one identity may have in flight at once; 0 turns the limit off. */
        max_concurrent: Type.Integer({ minimum: 0, default: 0 }),
        /** Redis key prefix, so several deployments can share a server. */
        key_prefix: Type.String({ minLength: 1, default: 'inferd:rl:' }),
        /** A Redis call slower than this counts as a failure and the local limiter answers. */
        redis_timeout_ms: Type.Integer({ minimum: 1, default: 200 }),
        /** While degraded, how often Redis is probed for its return. */
        redis_retry_ms: Type.Integer({ minimum: 100, default: 1000 }),
        /** A replica leases about this much of an identity's traffic in tokens at once; unspent tokens go back after it (a longer term when Redis round trips are slower: four of them). */
        lease_ms: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
        /** The most one lease takes, as a share of the bucket and of one second's allowance (whichever is smaller). */
        max_lease_share: Type.Number({ exclusiveMinimum: 0, maximum: 0.25, default: 0.02 }),
      },
      { additionalProperties: false, default: {} },
    ),
    tls: Type.Optional(
      Type.Object(
        {
          cert_file: Type.String({ minLength: 1 }),
          key_file: Type.String({ minLength: 1 }),
          /** CA bundle that client certificates must chain to (mTLS). */
          ca_file: Type.Optional(Type.String({ minLength: 1 })),
          /** none: no client certificate; request: ask, accept without; require: refuse without one. */
          client_auth: Type.Union([Type.Literal('none'), Type.Literal('request'), Type.Literal('require')], { default: 'none' }),
          min_version: Type.Union([Type.Literal('TLSv1.2'), Type.Literal('TLSv1.3')], { default: 'TLSv1.2' }),
          /** Reload certificate, key and CA when the files change. */
          watch: Type.Boolean({ default: true }),
        },
        { additionalProperties: false },
      ),
    ),
    audit: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        /** How checkpoints are signed: a shared HMAC-SHA256 secret, or an Ed25519 key pair (verifiable with the public key alone). */
        signing_algorithm: Type.Union([Type.Literal('hmac-sha256'), Type.Literal('ed25519')], { default: 'hmac-sha256' }),
        /** Key of the signed checkpoints: the HMAC secret (at least 32 bytes) or the Ed25519 private key (PKCS#8 PEM). */
        signing_key: Type.Optional(SecretSource),
        /** Ed25519 public key (SPKI PEM) that `inferd audit verify` checks checkpoints with, without the private key. */
        public_key_file: Type.Optional(Type.String({ minLength: 1 })),
        /** A checkpoint after this many records... */
        checkpoint_every: Type.Integer({ minimum: 1, default: 1000 }),
        /** ...or after this long, whichever comes first. */
        checkpoint_interval_ms: Type.Integer({ minimum: 1000, default: 3_600_000 }),
        /** Also record authentication failures (a flood is rate limited to one record per second per source). */
        auth_failures: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
    artifacts: Type.Object(
      {
        /** AES-256-GCM encryption of the registry's artifact files, with a 32-byte key (hex or base64). */
        encryption_key: Type.Optional(SecretSource),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export type SecurityConfig = Static<typeof SecurityConfigSchema>;
export type RoleConfig = Static<typeof RoleSchema>;
// The literal list above and PERMISSIONS must agree; this line fails to compile when they do not.
const _samePermissions: [Permission, RoleConfig['permissions'][number]] = ['' as RoleConfig['permissions'][number], '' as Permission];
void _samePermissions;
export type SecretSourceConfig = Static<typeof SecretSource>;
export type JwtConfig = NonNullable<SecurityConfig['authentication']['jwt']>;
export type TlsConfig = NonNullable<SecurityConfig['tls']>;
export type RateLimitConfig = SecurityConfig['rate_limit'];

/**
 * The checks a schema cannot express. Throws one ConfigError listing every problem; `where`
 * names the file. Does not read key files (that happens when the server starts).
 */
export function checkSecurityConfig(config: SecurityConfig, where = 'configuration'): void {
  const problems: string[] = [];
  const source = (s: SecretSourceConfig | undefined, key: string): void => {
    if (s !== undefined && (s.file === undefined) === (s.env === undefined)) problems.push(`'${key}' needs exactly one of 'file' or 'env'`);
  };
  source(config.authentication.api_keys.pepper, 'security.authentication.api_keys.pepper');
  source(config.audit.signing_key, 'security.audit.signing_key');
  source(config.artifacts.encryption_key, 'security.artifacts.encryption_key');
  const jwt = config.authentication.jwt;
  if (jwt !== undefined && jwt.jwks_url === undefined && jwt.public_key_files.length === 0) {
    problems.push(`'security.authentication.jwt' needs 'jwks_url' or 'public_key_files'`);
  }
  if (jwt?.jwks_url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(jwt.jwks_url);
    } catch {
      problems.push(`'security.authentication.jwt.jwks_url' is not a URL`);
    }
    if (url !== undefined && url.protocol !== 'https:' && !isLoopbackHost(url.hostname)) {
      problems.push(`'security.authentication.jwt.jwks_url' must use https (plain http only on loopback)`);
    }
  }
  if (config.enabled && config.authentication.api_keys.enabled && config.authentication.api_keys.pepper === undefined) {
    problems.push(`'security.authentication.api_keys.pepper' is required when API keys are on (a file or env holding at least 32 random bytes)`);
  }
  const a = config.authentication;
  if (config.enabled && a.required && !a.api_keys.enabled && a.jwt === undefined && !a.mtls.enabled) {
    problems.push(`'security.authentication' turns every way to authenticate off (api_keys, jwt, mtls) while 'required' is on: every request would be refused`);
  }
  if (config.authentication.mtls.enabled && (config.tls === undefined || config.tls.client_auth === 'none' || config.tls.ca_file === undefined)) {
    problems.push(`'security.authentication.mtls' needs 'security.tls' with 'ca_file' and 'client_auth' request or require`);
  }
  if (config.tls !== undefined && config.tls.client_auth !== 'none' && config.tls.ca_file === undefined) {
    problems.push(`'security.tls.client_auth' ${config.tls.client_auth} needs 'security.tls.ca_file'`);
  }
  if (config.rate_limit.enabled && !config.enabled) {
    problems.push(`'security.rate_limit' limits per caller identity and needs 'security.enabled: true' (authentication)`);
  }
  if (config.audit.enabled && config.audit.signing_key === undefined) {
    problems.push(`'security.audit.signing_key' is required when the audit log is on`);
  }
  const known = new Set(['admin', ...Object.keys(config.authorization.roles)]);
  const roleLists: Array<[string, string[]]> = [
    ['security.authentication.anonymous_roles', config.authentication.anonymous_roles],
    ['security.authentication.mtls.default_roles', config.authentication.mtls.default_roles],
    ...Object.entries(config.authentication.mtls.roles).map(([k, v]): [string, string[]] => [`security.authentication.mtls.roles.${k}`, v]),
  ];
  for (const [key, roles] of roleLists) {
    for (const role of roles) if (!known.has(role)) problems.push(`'${key}' names role '${role}', which 'security.authorization.roles' does not define`);
  }
  if (problems.length > 0) throw new ConfigError(`${where}: ${problems.join('; ')}`);
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\./.test(h);
}
