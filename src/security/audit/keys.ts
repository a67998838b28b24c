/**
 * The checkpoint key named by `security.audit`: an HMAC-SHA256 secret (the default) or an
 * Ed25519 private key (PKCS#8 PEM), and what verifies its checkpoints (the same secret, or the
 * Ed25519 public key, which can verify but not sign).
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../config/validate.js';
import type { SecurityConfig } from '../config.js';
import { readSecret, requireLength } from '../secrets.js';
import { Ed25519CheckpointSigner, Ed25519CheckpointVerifier, HmacCheckpointKey, type CheckpointSigner, type CheckpointVerifier } from './chain.js';

type AuditConfig = SecurityConfig['audit'];

export function checkpointSigner(audit: AuditConfig, env: NodeJS.ProcessEnv = process.env): CheckpointSigner | undefined {
  if (audit.signing_key === undefined) return undefined;
  const secret = readSecret(audit.signing_key, 'security.audit.signing_key', env);
  if (audit.signing_algorithm === 'ed25519') {
    try {
      return new Ed25519CheckpointSigner(secret);
    } catch (error) {
      throw new ConfigError(`security.audit.signing_key: ${(error as Error).message}; make one with: openssl genpkey -algorithm ed25519 -out audit-ed25519.pem`);
    }
  }
  return new HmacCheckpointKey(requireLength(secret, 32, 'security.audit.signing_key'));
}

/** An Ed25519 public key file (SPKI PEM); public, so no permission check. */
export function checkpointPublicKey(file: string): Ed25519CheckpointVerifier {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`audit public key: cannot read ${file} (${(error as Error).message})`);
  }
  try {
    return new Ed25519CheckpointVerifier(pem);
  } catch (error) {
    throw new ConfigError(`audit public key ${file}: ${(error as Error).message}`);
  }
}

/** What checks signatures when nothing else is given: the public key file, else the signing key. */
export function checkpointVerifier(audit: AuditConfig, env: NodeJS.ProcessEnv = process.env): CheckpointVerifier | undefined {
  if (audit.public_key_file !== undefined) return checkpointPublicKey(audit.public_key_file);
  return checkpointSigner(audit, env);
}
