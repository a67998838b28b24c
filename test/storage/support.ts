/** Helpers for the object-storage tests: a log sink, a model uploaded to a bucket, servers fed from S3. */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { S3Server } from '../support/s3.js';
import type { StorageSettings } from '../../src/storage/open.js';

export interface LogSink {
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  messages(msg: string): Array<Record<string, unknown>>;
}

export function logSink(): LogSink {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines, messages: (msg) => lines.filter((l) => l['msg'] === msg) };
}

/** Storage settings against the test server, with credentials the AWS way (environment). */
export async function settingsFor(s3: S3Server, logger?: Logger, extra: Partial<StorageSettings> = {}): Promise<StorageSettings> {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey, AWS_REGION: s3.region });
  return {
    cacheDir: await mkdtemp(join(tmpdir(), 'inferd-cache-')),
    s3: { endpoint: s3.endpoint, maxAttempts: 2, connectTimeoutMs: 2000, requestTimeoutMs: 20_000 },
    ...(logger ? { logger } : {}),
    ...extra,
  };
}

/** Every file under a directory, relative, sorted ('/'-separated). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (rel: string) => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true }).catch(() => [])) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await visit(r);
      else out.push(r);
    }
  };
  await visit('');
  return out.sort();
}
