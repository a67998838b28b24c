/**
 * The server's connection to the model registry. The server starts and keeps serving when the
 * registry is down: opening is retried on each use, and every caller gets the store's own
 * UNAVAILABLE error naming it (password hidden) instead of a crash.
 */
import type { Logger } from 'pino';
import { InferdError, UnavailableError, toInferdError } from '../core/errors.js';
import { defaultRegistryUrl, openRegistry } from '../registry/open.js';
import type { Registry } from '../registry/registry.js';
import { redactUrl } from '../registry/sql/postgres.js';
import type { ArtifactCipher } from '../security/artifacts/cipher.js';

export interface RegistryLinkOptions {
  home?: string;
  busyTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Asked before a version is deleted: a serving version cannot be. */
  isServing?: (name: string, version: number) => boolean;
  /** Encrypts artifacts at rest (security.artifacts.encryption_key). */
  artifactCipher?: ArtifactCipher;
  logger?: Logger;
}

export class RegistryLink {
  readonly url: string;
  /** The URL fit for logs and messages. */
  readonly label: string;
  private registry: Registry | undefined;
  private opening: Promise<Registry> | undefined;
  private closed = false;
  /** Why the last attempt to reach the registry failed; cleared when one succeeds. */
  lastError: string | undefined;

  constructor(
    url: string | undefined,
    private readonly options: RegistryLinkOptions = {},
  ) {
    this.url = url ?? defaultRegistryUrl();
    this.label = this.url.startsWith('postgres') ? redactUrl(this.url) : this.url;
  }

  /** The open registry, opening it first when needed; throws UNAVAILABLE naming the store. */
  get(): Promise<Registry> {
    if (this.registry) return Promise.resolve(this.registry);
    if (this.closed) return Promise.reject(new UnavailableError(`registry ${this.label} is closed`));
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<Registry> {
    const o = this.options;
    try {
      const registry = await openRegistry(this.url, {
        ...(o.home !== undefined ? { home: o.home } : {}),
        ...(o.busyTimeoutMs !== undefined ? { busyTimeoutMs: o.busyTimeoutMs } : {}),
        ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
        ...(o.isServing !== undefined ? { isServing: o.isServing } : {}),
        ...(o.artifactCipher !== undefined ? { artifactCipher: o.artifactCipher } : {}),
      });
      if (this.closed) {
        await registry.close().catch(() => undefined);
        throw new UnavailableError(`registry ${this.label} is closed`);
      }
      this.registry = registry;
      this.noteSuccess();
      o.logger?.info({ registry: registry.store.label }, 'model registry open');
      return registry;
    } catch (error) {
      const e = toInferdError(error);
      this.noteFailure(e);
      // A store that is not a registry (or a newer schema) is a configuration problem, but the
      // server still serves what it can; the caller sees why.
      throw e.code === 'UNAVAILABLE' ? e : new InferdError('UNAVAILABLE', `registry ${this.label} cannot be opened: ${e.message}`, { cause: e });
    }
  }

  /** Records a failed registry call (logged once per outage). */
  noteFailure(error: unknown): void {
    const message = toInferdError(error).message;
    if (this.lastError === undefined) this.options.logger?.warn({ registry: this.label, reason: message }, 'model registry unavailable; loaded models keep serving');
    this.lastError = message;
  }

  noteSuccess(): void {
    if (this.lastError !== undefined) this.options.logger?.info({ registry: this.label }, 'model registry reachable again');
    this.lastError = undefined;
  }

  get isOpen(): boolean {
    return this.registry !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.opening?.catch(() => undefined);
    const registry = this.registry;
    this.registry = undefined;
    await registry?.close().catch(() => undefined);
  }
}
