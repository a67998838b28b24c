/**
 * Large JSON infer requests are decoded off the event loop, in a small pool of decoder threads:
 * a 3 MB body of 150,000 numbers takes milliseconds to read, time in which the event loop would
 * answer nothing else (health probes, small requests). The typed arrays come back transferred,
 * and from there go to the model's worker: no copy.
 *
 * A body whose length is known (Content-Length) can be decoded while it arrives: the event loop
 * copies each chunk off the socket into shared memory, and the decoder thread reads behind it
 * (`ArrivingBody`), so decoding overlaps receiving instead of following it. A body buffered
 * whole (chunked, compressed, or when no thread is free) is transferred to the thread.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { InferdError, InvalidInputError, type ErrorCode } from '../core/errors.js';
import type { InferenceRequest } from '../core/types.js';

export type JsonDecodeTask =
  | { body: Uint8Array }
  /** A body still arriving: `state` as `ArrivingBody` lays it out. */
  | { arriving: { bytes: Uint8Array; state: Int32Array } };

export type JsonDecodeReply =
  | { request: InferenceRequest }
  | { refused: { code: ErrorCode; message: string } }
  /** The decoder stopped reading an arriving body (it stalled, or was abandoned): decode it whole once it is in. */
  | { incomplete: string };

export interface JsonDecodePoolOptions {
  /** Decoder threads. */
  threads: number;
  /** Bodies waiting for a thread before new ones are refused (503). */
  maxQueue: number;
}

/** Indices into an arriving body's shared state. */
export const ARRIVED = 0;
export const STATUS = 1;
/** Values of `state[STATUS]`. */
export const RECEIVING = 0;
export const COMPLETE = 1;
export const ABANDONED = 2;

/**
 * A request body of known length, written chunk by chunk into shared memory as it comes off the
 * socket while a decoder thread reads it. `state[ARRIVED]` counts the bytes written (stored after
 * them, so a reader that loads it sees them) and every change is notified on that index.
 */
export class ArrivingBody {
  readonly bytes: Uint8Array;
  readonly state = new Int32Array(new SharedArrayBuffer(8));
  private received = 0;
  private settled = false;
  /** Settles when the whole body is in (resolves) or will not be (rejects). */
  readonly complete: Promise<void>;
  private resolveComplete!: () => void;
  private rejectComplete!: (reason: Error) => void;

  constructor(readonly length: number) {
    this.bytes = new Uint8Array(new SharedArrayBuffer(length));
    this.complete = new Promise<void>((resolve, reject) => {
      this.resolveComplete = resolve;
      this.rejectComplete = reject;
    });
    // Whoever awaits it handles a rejection; a body abandoned before anyone does must not crash the process.
    this.complete.catch(() => undefined);
  }

  write(chunk: Uint8Array): void {
    if (this.settled) return;
    if (this.received + chunk.byteLength > this.length) {
      this.abandon(new InvalidInputError(`the request body is longer than its Content-Length of ${this.length} bytes`));
      return;
    }
    this.bytes.set(chunk, this.received);
    this.received += chunk.byteLength;
    Atomics.store(this.state, ARRIVED, this.received);
    Atomics.notify(this.state, ARRIVED);
  }

  end(): void {
    if (this.settled) return;
    if (this.received !== this.length) {
      this.abandon(new InvalidInputError(`the request body ended after ${this.received} of its Content-Length of ${this.length} bytes`));
      return;
    }
    this.settled = true;
    Atomics.store(this.state, STATUS, COMPLETE);
    Atomics.notify(this.state, ARRIVED);
    this.resolveComplete();
  }

  /** The body will not come whole (the client went away, or sent more or less than it said). */
  abandon(reason: Error): void {
    if (this.settled) return;
    this.settled = true;
    Atomics.store(this.state, STATUS, ABANDONED);
    Atomics.notify(this.state, ARRIVED);
    this.rejectComplete(reason);
  }
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
  /** Bodies handed to the threads and not answered yet. */
  private running = 0;
  /**
   * Arriving bodies not yet in. Each holds shared memory of its full length from its first byte;
   * a client that stalls frees the thread but not that memory, so their number is bounded too.
   */
  private arriving = 0;

  constructor(private readonly options: JsonDecodePoolOptions) {}

  /**
   * Decodes a JSON infer request body in a decoder thread. The body's buffer is transferred
   * (detached here) when the body owns it whole, copied otherwise.
   */
  async decode(body: Uint8Array): Promise<InferenceRequest> {
    this.admit();
    const owned = body.byteOffset === 0 && body.byteLength === body.buffer.byteLength && body.buffer instanceof ArrayBuffer ? body : Uint8Array.prototype.slice.call(body);
    return answer(await this.run({ body: owned }, [owned.buffer as ArrayBuffer]));
  }

  /**
   * Whether a body may start decoding now, while it arrives: only when a thread is free. A
   * thread reading behind a body waits for its bytes; queued behind others, the body would be in
   * by the time a thread takes it (and a thread waiting on it could have read a body already in).
   */
  get canDecodeArriving(): boolean {
    return !this.closed && this.running < this.options.threads && this.arriving < 2 * this.options.threads;
  }

  /**
   * Decodes a body while it arrives. Settles once the decoder has read it all; when the decoder
   * gives up on it mid-way (the client stalled), it is decoded whole once it is in.
   */
  async decodeArriving(body: ArrivingBody): Promise<InferenceRequest> {
    this.admit();
    this.arriving++;
    const settled = (): void => void this.arriving--;
    body.complete.then(settled, settled);
    const reply = await this.run({ arriving: { bytes: body.bytes, state: body.state } });
    if (!('incomplete' in reply)) return answer(reply);
    await body.complete;
    // The shared bytes are read in place: nothing to transfer.
    return answer(await this.run({ body: body.bytes }));
  }

  private async run(task: JsonDecodeTask, transferList?: ArrayBuffer[]): Promise<JsonDecodeReply> {
    this.running++;
    try {
      return (await this.pool().run(task, transferList ? { transferList } : {})) as JsonDecodeReply;
    } finally {
      this.running--;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.piscina?.destroy();
  }

  private admit(): void {
    if (this.closed) throw new InferdError('UNAVAILABLE', 'the server is shutting down');
    if (this.piscina !== undefined && this.piscina.queueSize >= this.options.maxQueue) {
      throw new InferdError('UNAVAILABLE', `${this.options.maxQueue} large JSON bodies are already waiting to be decoded; retry later or send the binary extension`, { retryAfterSeconds: 1 });
    }
  }

  private pool(): Piscina {
    // Threads start with the first large body: most servers never see one.
    return (this.piscina ??= this.start());
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

function answer(reply: JsonDecodeReply): InferenceRequest {
  if ('refused' in reply) {
    const { code, message } = reply.refused;
    throw code === 'INVALID_ARGUMENT' ? new InvalidInputError(message) : new InferdError(code, message);
  }
  if ('incomplete' in reply) throw new InferdError('INTERNAL', `the decoder thread did not finish the body (${reply.incomplete})`);
  return reply.request;
}
