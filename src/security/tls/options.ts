/**
 * TLS for the doors: Node TLS options from certificate, key and CA files (TLS 1.2 minimum,
 * client certificates requested or required for mTLS), reloaded without a restart when the
 * files change.
 *
 * HTTPS (Fastify's `https` option, or any tls.Server): `ReloadingTls.serverOptions()` at start,
 * then `attach(server)`: a change to any file (watched through its directory, so the
 * rename-into-place that certificate tools and Kubernetes secret mounts do is seen) rebuilds
 * the secure context and swaps it in with `server.setSecureContext`. New connections get the
 * new certificate; open ones keep theirs. A broken file (key not matching the certificate,
 * half-written PEM) is reported and the previous context stays.
 *
 * gRPC (grpc-js): `grpcServerCredentials(files)` uses grpc-js's file-watching certificate
 * provider, which re-reads the files every `refreshIntervalMs`; grpc-js applies a new identity
 * certificate to new connections. grpc-js does not expose the TLS minimum version: Node's
 * default (TLS 1.2) applies.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ConfigError } from '../../config/validate.js';
import type { TlsConfig } from '../config.js';

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
  clientAuth?: 'none' | 'request' | 'require';
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export function tlsFilesFromConfig(config: TlsConfig): TlsFiles {
  return { certFile: config.cert_file, keyFile: config.key_file, ...(config.ca_file !== undefined ? { caFile: config.ca_file } : {}), clientAuth: config.client_auth, minVersion: config.min_version };
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ConfigError(`TLS ${what} ${file} cannot be read (${(error as Error).message})`);
  }
}

/** Reads the files and checks they make a usable context (the key matches the certificate). */
export function readTlsOptions(files: TlsFiles): TlsOptions {
  const clientAuth = files.clientAuth ?? 'none';
  if (clientAuth !== 'none' && files.caFile === undefined) throw new ConfigError(`TLS client_auth '${clientAuth}' needs a CA file`);
  const secure: SecureContextOptions = {
    cert: read(files.certFile, 'certificate'),
    key: read(files.keyFile, 'key'),
    ...(files.caFile !== undefined ? { ca: read(files.caFile, 'CA bundle') } : {}),
    minVersion: files.minVersion ?? 'TLSv1.2',
  };
  try {
    createSecureContext(secure);
  } catch (error) {
    throw new ConfigError(`TLS certificate ${files.certFile} and key ${files.keyFile} do not make a usable context (${(error as Error).message})`);
  }
  return {
    ...secure,
    requestCert: clientAuth !== 'none',
    // `request`: the handshake completes without a valid certificate; the request then has no mTLS identity.
    rejectUnauthorized: clientAuth === 'require',
  };
}

export interface ReloadEvents {
  onReload?: (fingerprint: string) => void;
  onError?: (error: Error) => void;
}

export class ReloadingTls {
  private current: TlsOptions;
  private readonly watchers: FSWatcher[] = [];
  private readonly servers: TlsServer[] = [];
  private timer: NodeJS.Timeout | undefined;
  private fingerprintValue: string;

  constructor(
    private readonly files: TlsFiles,
    private readonly events: ReloadEvents = {},
    private readonly debounceMs = 200,
  ) {
    this.current = readTlsOptions(files);
    this.fingerprintValue = fingerprint(this.current);
  }

  /** Options for `https.createServer` / Fastify's `https`. */
  serverOptions(): TlsOptions {
    return { ...this.current };
  }

  /** SHA-256 over certificate, key and CA as loaded, to tell in logs whether a reload changed anything. */
  get fingerprint(): string {
    return this.fingerprintValue;
  }

  /** Starts watching (once) and swaps the context of `server` on every change. */
  attach(server: TlsServer): void {
    this.servers.push(server);
    if (this.watchers.length > 0) return;
    const dirs = new Set([this.files.certFile, this.files.keyFile, ...(this.files.caFile !== undefined ? [this.files.caFile] : [])].map((f) => path.dirname(path.resolve(f))));
    for (const dir of dirs) {
      const watcher = watch(dir, () => this.schedule());
      watcher.on('error', (error) => this.events.onError?.(error));
      this.watchers.push(watcher);
    }
  }

  private schedule(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    // Debounced: a certificate and its key are usually written one after the other.
    this.timer = setTimeout(() => this.reload(), this.debounceMs);
    this.timer.unref();
  }

  /** Re-reads the files now; returns true when the context changed. */
  reload(): boolean {
    let next: TlsOptions;
    try {
      next = readTlsOptions(this.files);
    } catch (error) {
      this.events.onError?.(error as Error);
      return false;
    }
    const print = fingerprint(next);
    if (print === this.fingerprintValue) return false;
    for (const server of this.servers) server.setSecureContext(next);
    this.current = next;
    this.fingerprintValue = print;
    this.events.onReload?.(print);
    return true;
  }

  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }
}

function fingerprint(options: TlsOptions): string {
  const hash = createHash('sha256');
  for (const part of [options.cert, options.key, options.ca]) if (part !== undefined) hash.update(part as Buffer);
  return hash.digest('hex').slice(0, 16);
}

/**
 * grpc-js server credentials that follow file changes (polled every `refreshIntervalMs`).
 * Checks the files once up front so a bad path fails at start, not on the first connection.
 */
export function grpcServerCredentials(files: TlsFiles, refreshIntervalMs = 10_000): grpc.ServerCredentials {
  readTlsOptions(files);
  const identity = new grpc.experimental.FileWatcherCertificateProvider({ certificateFile: files.certFile, privateKeyFile: files.keyFile, refreshIntervalMs });
  const clientAuth = files.clientAuth ?? 'none';
  const ca = clientAuth === 'none' || files.caFile === undefined ? null : new grpc.experimental.FileWatcherCertificateProvider({ caCertificateFile: files.caFile, refreshIntervalMs });
  // grpc-js names the parameters the other way round; the first is the identity provider.
  return grpc.experimental.createCertificateProviderServerCredentials(identity, ca, clientAuth === 'require');
}
