/**
 * The thread that decodes large JSON infer requests off the event loop. The body arrives as a
 * transferred buffer, or as shared memory the event loop is still filling (then the reader keeps
 * behind the bytes that have arrived); the tensors go back with their buffers transferred, so no
 * element is copied on the way out. A refusal crosses as plain data (an error's class would not).
 */
import { workerData } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { InferdError } from '../core/errors.js';
import { transferablesOf } from '../core/tensor.js';
import type { InferenceRequest } from '../core/types.js';
import { decodeJsonInferRequest, readInferRequest, type Arrival } from './json-request.js';
import { ABANDONED, ARRIVED, STATUS, WANTED, type JsonDecodeReply, type JsonDecodeTask, type JsonDecodeWorkerData } from './json-decode-pool.js';
import { ThreadPriority } from '../workers/priority.js';

// Lowered once, before any body: the event loop gets a core first when decoding saturates them.
new ThreadPriority(Int32Array.of((workerData as JsonDecodeWorkerData | undefined)?.nice ?? 0)).apply();

/**
 * Longest wait for the next bytes of an arriving body, and for all of them together: past
 * either, the thread stops reading it (and is free for other bodies); the body is decoded whole
 * once it is in. A client trickling its body cannot hold the thread longer than this.
 */
const STALL_MS = 100;
const WAIT_BUDGET_MS = 400;
/** Bytes to let arrive before reading on, once the reader has caught up with them. */
const STRETCH = 128 * 1024;

export default function decode(task: JsonDecodeTask): JsonDecodeReply | ReturnType<typeof Piscina.move> {
  let request: InferenceRequest;
  try {
    if ('arriving' in task) {
      const read = readArriving(task.arriving.bytes, task.arriving.state);
      if (typeof read === 'string') return { incomplete: read };
      request = read;
    } else {
      request = decodeJsonInferRequest(task.body);
    }
  } catch (error) {
    if (error instanceof InferdError) return { refused: { code: error.code, message: error.message } };
    throw error;
  }
  const transfer = transferablesOf(request.inputs);
  const reply: JsonDecodeReply = { request };
  if (transfer.length === 0) return reply;
  return Piscina.move(new TransferableReply(reply, transfer) as unknown as ArrayBuffer);
}

/** The request read while its body arrives, or why the body did not come in time. */
function readArriving(bytes: Uint8Array, state: Int32Array): InferenceRequest | string {
  const arrival = new SharedArrival(state, bytes.byteLength);
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const request = readInferRequest(body, arrival);
  if (request !== undefined) return request;
  if (arrival.failure !== undefined) return arrival.failure;
  // Not a plain request (or the reader met a byte not there yet): the general decoder reads the
  // whole body, and a malformed one gets its usual refusal.
  try {
    arrival.waitFor(body.length);
  } catch {
    return arrival.failure ?? 'the body did not arrive';
  }
  return decodeJsonInferRequest(body);
}

class SharedArrival implements Arrival {
  failure: string | undefined;
  private budget = WAIT_BUDGET_MS;

  constructor(
    private readonly state: Int32Array,
    private readonly length: number,
  ) {}

  waitFor(end: number): number {
    const needed = Math.min(end, this.length);
    let arrived = Atomics.load(this.state, ARRIVED);
    if (arrived >= needed) return arrived;
    // Having caught up with the socket, wait for a good stretch more rather than chunk by chunk:
    // one wake-up per STRETCH bytes, and the rest is read in well under a millisecond.
    const target = Math.min(this.length, Math.max(needed, arrived + STRETCH));
    Atomics.store(this.state, WANTED, target);
    for (;;) {
      arrived = Atomics.load(this.state, ARRIVED);
      if (arrived >= target) return arrived;
      if (Atomics.load(this.state, STATUS) === ABANDONED) throw this.fail('the body was abandoned');
      if (this.budget <= 0) throw this.fail(`the body took more than ${WAIT_BUDGET_MS} ms to arrive`);
      const started = performance.now();
      const outcome = Atomics.wait(this.state, ARRIVED, arrived, Math.min(STALL_MS, this.budget));
      this.budget -= performance.now() - started;
      if (outcome === 'timed-out' && Atomics.load(this.state, ARRIVED) === arrived) throw this.fail(`no bytes of the body arrived for ${STALL_MS} ms`);
    }
  }

  private fail(reason: string): Error {
    this.failure = reason;
    return new Error(reason);
  }
}

/** Piscina's protocol for returning a value together with its transfer list. */
class TransferableReply {
  constructor(
    private readonly value: JsonDecodeReply,
    private readonly buffers: ArrayBuffer[],
  ) {}
  get [Piscina.transferableSymbol](): ArrayBuffer[] {
    return this.buffers;
  }
  get [Piscina.valueSymbol](): JsonDecodeReply {
    return this.value;
  }
}
