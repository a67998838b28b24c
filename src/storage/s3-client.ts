/**
 * The S3 client every storage path shares. Credentials come from the SDK's default chain
 * (environment, shared config and credentials files with AWS_PROFILE, web identity tokens,
 * container and instance metadata); retries use the SDK's standard strategy (exponential
 * backoff with jitter). A custom endpoint serves S3-compatible stores (MinIO, SeaweedFS, Ceph,
 * GCS interop); path-style addressing is then the default, as those stores usually need it.
 */
import { S3Client } from '@aws-sdk/client-s3';

export interface S3Options {
  /** e.g. http://127.0.0.1:8333; else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS. */
  endpoint?: string;
  /** Else the SDK's region chain (AWS_REGION, profile); us-east-1 with a custom endpoint. */
  region?: string;
  /** Default: true with a custom endpoint, false on AWS. */
  forcePathStyle?: boolean;
  /** Attempts per request, retries included. */
  maxAttempts?: number;
  connectTimeoutMs?: number;
  /** Bound on one request (a ranged part, a listing page); 0 turns it off. */
  requestTimeoutMs?: number;
}

export const S3_DEFAULTS = { maxAttempts: 5, connectTimeoutMs: 5000, requestTimeoutMs: 120_000 } as const;

export function createS3Client(options: S3Options = {}): S3Client {
  const endpoint = options.endpoint ?? process.env['AWS_ENDPOINT_URL_S3'] ?? process.env['AWS_ENDPOINT_URL'];
  const custom = endpoint !== undefined && endpoint !== '';
  const region = options.region ?? (process.env['AWS_REGION'] || process.env['AWS_DEFAULT_REGION'] || (custom ? 'us-east-1' : undefined));
  return new S3Client({
    ...(custom ? { endpoint } : {}),
    ...(region !== undefined ? { region } : {}),
    forcePathStyle: options.forcePathStyle ?? custom,
    maxAttempts: options.maxAttempts ?? S3_DEFAULTS.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs ?? S3_DEFAULTS.connectTimeoutMs,
      requestTimeout: options.requestTimeoutMs ?? S3_DEFAULTS.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  });
}

/** A short reason for an S3 failure: the service's code and message, or the network error. */
export function describeS3Error(error: unknown): string {
  const e = error as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name && e.name !== 'Error' ? e.name : e.code;
  const message = e.message && e.message !== 'UnknownError' ? e.message : '';
  return [name, status !== undefined ? `HTTP ${status}` : undefined, message].filter((x) => x !== undefined && x !== '').join(': ') || String(error);
}

/** Whether an S3 error says the object or bucket is not there (as opposed to the store failing). */
export function isNotFound(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NotFound' || e.name === 'NoSuchKey' || e.$metadata?.httpStatusCode === 404;
}
