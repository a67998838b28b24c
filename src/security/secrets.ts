/**
 * Secrets named by configuration (`{file}` or `{env}`): read once at start, never logged.
 * Files must not be readable by other users. Text secrets are taken as hex (64 chars), base64
 * or raw bytes, in that order.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../config/validate.js';
import type { SecretSourceConfig } from './config.js';

export function readSecret(source: SecretSourceConfig, what: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  let textValue: string;
  if (source.file !== undefined) {
    try {
      const info = statSync(source.file);
      if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
        throw new ConfigError(`${what}: ${source.file} is readable by other users; chmod 600 it`);
      }
      textValue = readFileSync(source.file, 'utf8');
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      throw new ConfigError(`${what}: cannot read ${source.file} (${(error as Error).message})`);
    }
  } else if (source.env !== undefined) {
    const value = env[source.env];
    if (value === undefined || value === '') throw new ConfigError(`${what}: environment variable ${source.env} is not set`);
    textValue = value;
  } else {
    throw new ConfigError(`${what}: needs 'file' or 'env'`);
  }
  return decodeSecret(textValue.trim());
}

export function decodeSecret(value: string): Buffer {
  if (/^[0-9a-fA-F]{64,}$/.test(value) && value.length % 2 === 0) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]{43,}={0,2}$/.test(value)) return Buffer.from(value, 'base64');
  return Buffer.from(value, 'utf8');
}

/** Refuses a key shorter than `bytes`: a short HMAC key or pepper is guessable offline. */
export function requireLength(secret: Buffer, bytes: number, what: string): Buffer {
  if (secret.length < bytes) throw new ConfigError(`${what} must hold at least ${bytes} bytes (it has ${secret.length}); generate one with: openssl rand -hex ${bytes}`);
  return secret;
}
