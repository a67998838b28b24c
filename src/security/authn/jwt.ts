/**
 * JWT bearer tokens, verified with jose against a JWKS URL (cached, refetched on an unknown
 * `kid` with a cool-down, so the identity provider can rotate keys without a restart) and/or
 * PEM public keys. Asymmetric algorithms only and always pinned: a token naming `none` or
 * `HS256` is refused before any key is used, which closes the algorithm-confusion attack.
 * `iss`, `aud`, `exp` (required) and `nbf` are checked with a small clock skew.
 *
 * A verified token is kept in a bounded LRU until its `exp` (at most five minutes), so a repeat
 * costs one map lookup instead of a signature check.
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../../config/validate.js';
import type { JwtConfig } from '../config.js';

export type JwtAlgorithm = 'RS256' | 'ES256' | 'EdDSA';

export interface VerifiedToken {
  subject: string;
  roles: string[];
  /** Epoch ms. */
  expiresAt: number;
}

/** Why a token was refused; kept for logs and the audit log, never sent to the caller. */
export class TokenRejected extends Error {
  constructor(readonly why: string) {
    super(why);
  }
}

/** The JWKS could not be fetched: the token was not judged, so this is not the caller's fault. */
export class KeysUnavailable extends Error {}

export interface JwtVerifierOptions {
  issuer: string;
  audience: string;
  algorithms: JwtAlgorithm[];
  jwksUrl?: string;
  publicKeys?: KeyObject[];
  clockSkewSeconds?: number;
  rolesClaim?: string;
  cacheMaxEntries?: number;
  jwksTimeoutMs?: number;
  jwksMaxAgeMs?: number;
  jwksCooldownMs?: number;
}

const MAX_CACHE_MS = 5 * 60_000;

function algorithmOf(key: KeyObject): JwtAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
    case 'rsa-pss':
      return 'RS256';
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined;
    case 'ed25519':
      return 'EdDSA';
    default:
      return undefined;
  }
}

/** A PEM file holding an SPKI public key or an X.509 certificate. */
export function readPublicKeyFile(file: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`JWT public key ${file} cannot be read (${(error as Error).message})`);
  }
  try {
    return pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
  } catch (error) {
    throw new ConfigError(`JWT public key ${file} is not a PEM public key or certificate (${(error as Error).message})`);
  }
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function rolesFrom(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter((r) => r !== '');
  if (Array.isArray(value)) return value.filter((r): r is string => typeof r === 'string' && r !== '');
  return [];
}

export class JwtVerifier {
  private readonly remote: JWTVerifyGetKey | undefined;
  private readonly pemKeys: Array<{ key: KeyObject; alg: JwtAlgorithm }>;
  private readonly cache: LRUCache<string, VerifiedToken> | undefined;
  private readonly options: JwtVerifierOptions;

  constructor(options: JwtVerifierOptions) {
    if (options.algorithms.length === 0) throw new ConfigError('JWT verification needs at least one algorithm');
    for (const alg of options.algorithms) {
      if (alg !== 'RS256' && alg !== 'ES256' && alg !== 'EdDSA') throw new ConfigError(`JWT algorithm '${String(alg)}' is not allowed (RS256, ES256, EdDSA)`);
    }
    this.options = options;
    this.pemKeys = [];
    for (const key of options.publicKeys ?? []) {
      const alg = algorithmOf(key);
      if (alg === undefined) throw new ConfigError(`a JWT public key of type ${key.asymmetricKeyType ?? 'unknown'} fits none of RS256, ES256 (P-256), EdDSA (Ed25519)`);
      this.pemKeys.push({ key, alg });
    }
    if (options.jwksUrl !== undefined) {
      this.remote = createRemoteJWKSet(new URL(options.jwksUrl), {
        timeoutDuration: options.jwksTimeoutMs ?? 5000,
        cacheMaxAge: options.jwksMaxAgeMs ?? 600_000,
        cooldownDuration: options.jwksCooldownMs ?? 30_000,
      });
    }
    if (this.remote === undefined && this.pemKeys.length === 0) throw new ConfigError('JWT verification needs a JWKS URL or public keys');
    const max = options.cacheMaxEntries ?? 10_000;
    this.cache = max > 0 ? new LRUCache<string, VerifiedToken>({ max }) : undefined;
  }

  static fromConfig(config: JwtConfig): JwtVerifier {
    return new JwtVerifier({
      issuer: config.issuer,
      audience: config.audience,
      algorithms: config.algorithms,
      ...(config.jwks_url !== undefined ? { jwksUrl: config.jwks_url } : {}),
      publicKeys: config.public_key_files.map(readPublicKeyFile),
      clockSkewSeconds: config.clock_skew_s,
      rolesClaim: config.roles_claim,
      cacheMaxEntries: config.cache_max_entries,
      jwksTimeoutMs: config.jwks_timeout_ms,
      jwksMaxAgeMs: config.jwks_max_age_ms,
      jwksCooldownMs: config.jwks_cooldown_ms,
    });
  }

  /** Resolves to the token's identity or rejects with TokenRejected. */
  async verify(token: string): Promise<VerifiedToken> {
    const cached = this.cache?.get(token);
    if (cached !== undefined) {
      if (Date.now() < cached.expiresAt) return cached;
      this.cache!.delete(token);
    }
    const payload = await this.verifySignatureAndClaims(token);
    if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenRejected('token has no subject');
    const verified: VerifiedToken = {
      subject: payload.sub,
      roles: rolesFrom(claimAt(payload, this.options.rolesClaim ?? 'roles')),
      expiresAt: (payload.exp ?? 0) * 1000,
    };
    const ttl = Math.min(verified.expiresAt - Date.now(), MAX_CACHE_MS);
    if (this.cache !== undefined && ttl > 0) this.cache.set(token, verified, { ttl });
    return verified;
  }

  private async verifySignatureAndClaims(token: string): Promise<JWTPayload> {
    const claims = {
      issuer: this.options.issuer,
      audience: this.options.audience,
      algorithms: this.options.algorithms,
      clockTolerance: this.options.clockSkewSeconds ?? 30,
      requiredClaims: ['exp', 'sub'],
    };
    let lastError: unknown;
    if (this.remote !== undefined) {
      try {
        return (await jwtVerify(token, this.remote, claims)).payload;
      } catch (error) {
        lastError = error;
        // Only an unknown key falls through to the PEM keys; any other failure is final.
        if (!(error instanceof joseErrors.JWKSNoMatchingKey) || this.pemKeys.length === 0) throw rejection(error, true);
      }
    }
    for (const { key, alg } of this.pemKeys) {
      try {
        return (await jwtVerify(token, key, { ...claims, algorithms: [alg] })).payload;
      } catch (error) {
        lastError = error;
        // A signature or algorithm mismatch may mean "another key"; anything else is final.
        if (!(error instanceof joseErrors.JWSSignatureVerificationFailed) && !(error instanceof joseErrors.JOSEAlgNotAllowed)) throw rejection(error);
      }
    }
    throw rejection(lastError);
  }

  /** Drops every cached verification (after a key compromise, say). */
  clear(): void {
    this.cache?.clear();
  }
}

function rejection(error: unknown, remote = false): TokenRejected | KeysUnavailable {
  if (error instanceof TokenRejected || error instanceof KeysUnavailable) return error;
  if (remote && error instanceof joseErrors.JWKSTimeout) return new KeysUnavailable('JWKS fetch timed out');
  // fetch() failures (refused, DNS, TLS), non-200 answers and unreadable key sets from the JWKS endpoint.
  if (remote && (!(error instanceof joseErrors.JOSEError) || error.code === 'ERR_JOSE_GENERIC' || error.code === 'ERR_JWKS_INVALID')) {
    return new KeysUnavailable(`JWKS unavailable: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (error instanceof joseErrors.JWTExpired) return new TokenRejected('token expired');
  if (error instanceof joseErrors.JWTClaimValidationFailed) return new TokenRejected(`claim '${error.claim}' failed: ${error.reason}`);
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new TokenRejected('token algorithm not allowed');
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new TokenRejected('no key matches the token');
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new TokenRejected('signature verification failed');
  if (error instanceof joseErrors.JOSEError) return new TokenRejected(`${error.code}: ${error.message}`);
  return new TokenRejected(error instanceof Error ? error.message : 'token refused');
}
