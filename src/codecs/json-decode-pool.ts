/**
 * Large JSON infer requests are decoded off the event loop, in a small pool of decoder threads:
 * a 3 MB body of 150,000 numbers takes milliseconds to read, time in which the event loop would
 * answer nothing else (health probes, small requests). The body's bytes are transferred to the
 * thread, the typed arrays transferred back, and from there to the model's worker: no copy.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InferdError, InvalidInputError, type ErrorCode } from '../core/errors.js';
import type { InferenceRequest } from '../core/types.js';

export interface JsonDecodeTask {
  body: Uint8Array;
}

export type JsonDecodeReply = { request: InferenceRequest } | { refused: { code: ErrorCode; message: string } };

export interface JsonDecodePoolOptions {
  /** Decoder threads. */
  threads: number;
  /** Bodies waiting for a thread before new ones are refused (503). */
  maxQueue: number;
}

function workerEntry(): { filename: string; execArgv: string[] } {
  // Compiled: dist/codecs/json-decode-worker.js. From source (tests, tsx): the .ts file through tsx.
  const self = import.meta.url;
  if (self.endsWith('.ts')) return { filename: fileURLToPath(new URL('./json-decode-worker.ts', self)), execArgv: ['--import', 'tsx'] };
  return { filename: fileURLToPath(new URL('./json-decode-worker.js', self)), execArgv: [] };
}

export class JsonDecodePool {
  private piscina: Piscina | undefined;
  private closed = false;

  constructor(private readonly options: JsonDecodePoolOptions) {}

  /**
   * Decodes a JSON infer request body in a decoder thread. The body's buffer is transferred
   * (detached here) when the body owns it whole, copied otherwise.
   */
  async decode(body: Uint8Array): Promise<InferenceRequest> {
    if (this.closed) throw new InferdError('UNAVAILABLE', 'the server is shutting down');
    // Threads start with the first large body: most servers never see one.
    this.piscina ??= this.start();
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer ? body : Uint8Array.prototype.slice.call(body);
    if (this.piscina.queueSize >= this.options.maxQueue) {
      throw new InferdError('UNAVAILABLE', `${this.options.maxQueue} large JSON bodies are already waiting to be decoded; retry later or send the binary extension`, { retryAfterSeconds: 1 });
    }
    const reply = (await this.piscina.run({ body: owned } satisfies JsonDecodeTask, { transferList: [owned.buffer as ArrayBuffer] })) as JsonDecodeReply;
    if ('refused' in reply) {
      const { code, message } = reply.refused;
      throw code === 'INVALID_ARGUMENT' ? new InvalidInputError(message) : new InferdError(code, message);
    }
    return reply.request;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.piscina?.destroy();
  }

  private start(): Piscina {
    const entry = workerEntry();
    return new Piscina({
      filename: entry.filename,
      execArgv: entry.execArgv,
      minThreads: this.options.threads,
      maxThreads: this.options.threads,
      idleTimeout: Number.MAX_SAFE_INTEGER,
      name: 'default',
    });
  }
}
