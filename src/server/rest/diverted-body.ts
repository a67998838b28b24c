/**
 * Request bodies whose bytes go somewhere other than Fastify's buffer: a decoder thread reading
 * them while they arrive, or memory of their own. Fastify is handed a stream that only counts the
 * bytes, so its Content-Length checks and its errors stay as they are.
 */
import { Readable } from 'node:stream';
import { InvalidInputError } from '../../core/errors.js';

/** Where a diverted body's bytes go. */
export interface BodySink {
  write(chunk: Buffer): void;
  /** Every byte came (as many as Content-Length, which Fastify checks from the count). */
  end(): void;
  /** The body will not come whole: the socket failed, or closed before the end. */
  fail(error: Error): void;
}

export interface DivertOptions {
  /** A connection closed before the end also fails the counting stream, so Fastify's parse ends with the error. */
  closeFailsParse: boolean;
}

/** True when the Content-Encoding header leaves the body as sent (absent, empty or identity). */
export function isIdentityEncoding(encoding: string | undefined): boolean {
  if (encoding === undefined) return true;
  const e = encoding.trim();
  return e === '' || e.toLowerCase() === 'identity';
}

/** Sends the payload's bytes to `sink`; returns the stream to give Fastify in their place. */
export function divertBody(payload: Readable, sink: BodySink, options: DivertOptions): Readable {
  const counted = new Readable({ read() {} }) as Readable & { receivedEncodedLength: number };
  counted.receivedEncodedLength = 0;
  let ended = false;
  payload.on('data', (chunk: Buffer) => {
    sink.write(chunk);
    counted.receivedEncodedLength += chunk.length;
  });
  payload.on('end', () => {
    ended = true;
    sink.end();
    counted.push(null);
  });
  payload.on('error', (error: Error) => {
    sink.fail(error);
    counted.destroy(error);
  });
  payload.on('close', () => {
    if (ended) return;
    const error = new InvalidInputError('the connection closed before the request body was complete');
    sink.fail(error);
    if (options.closeFailsParse) counted.destroy(error);
  });
  return counted;
}
