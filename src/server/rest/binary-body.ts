/**
 * Large binary-extension bodies read straight into memory of their own: the bytes after the JSON
 * header start on an 8-byte boundary, so every numeric tensor can view them where they lie, and
 * when the body holds one tensor, the memory is that tensor's alone, so the model's worker can
 * take it whole (transferred, not copied; `lendToWorker`). Fastify would otherwise join the
 * socket's chunks into one buffer, and the tensor's bytes would then be copied once more to be
 * sent. The few bytes of padding before the body are never read.
 *
 * Fastify keeps counting the bytes (its Content-Length checks and errors stay as they are); the
 * route finds the body on the request instead of in `req.body`.
 */
import type { preParsingHookHandler } from 'fastify';
import type { InferenceRequest } from '../../core/types.js';
import { lendToWorker } from '../../core/tensor.js';
import { divertBody, isIdentityEncoding } from './diverted-body.js';

/** Below this, the copy the usual path makes costs less than a buffer of its own. */
export const OWN_MEMORY_MIN_BYTES = 64 * 1024;
/** Alignment of the binary section: the largest element size (FP64, INT64). */
const ALIGNMENT = 8;

declare module 'fastify' {
  interface FastifyRequest {
    /** A binary-extension body read into memory of its own (see binary-body.ts). */
    binaryBody?: Buffer;
  }
}

/**
 * Lends the body's memory to the request's tensor when it is the only one viewing it (one numeric
 * input, read where it lies): several inputs may go to different workers (ensemble steps), and
 * the first to leave would take the others' bytes with it.
 */
export function lendSoleTensor(request: InferenceRequest, body: Buffer): void {
  if (request.inputs.length !== 1) return;
  const data = request.inputs[0]!.data;
  if (!Array.isArray(data) && (data as ArrayBufferView).buffer === body.buffer) lendToWorker(body.buffer as ArrayBuffer);
}

export function binaryBodyHook(bodyLimitBytes: number): preParsingHookHandler {
  return (req, _reply, payload, done) => {
    const header = req.headers['inference-header-content-length'];
    if (header === undefined) return done(null, payload);
    const length = Number(req.headers['content-length']);
    const headerLength = Number(header);
    if (
      !Number.isSafeInteger(length) ||
      length < OWN_MEMORY_MIN_BYTES ||
      length > bodyLimitBytes ||
      !Number.isSafeInteger(headerLength) ||
      headerLength < 0 ||
      headerLength > length ||
      !isIdentityEncoding(req.headers['content-encoding']) ||
      req.contextError !== undefined
    ) {
      // Malformed or compressed: the usual path reads it and answers what is wrong.
      return done(null, payload);
    }
    const pad = (ALIGNMENT - (headerLength % ALIGNMENT)) % ALIGNMENT;
    // Not zeroed: every byte the tensor reads is written from the socket first.
    const memory = Buffer.allocUnsafeSlow(pad + length).buffer as ArrayBuffer;
    const bytes = new Uint8Array(memory, pad, length);
    let received = 0;
    const counted = divertBody(
      payload,
      {
        write(chunk) {
          // More than Content-Length cannot come through Node's HTTP parser; should it, Fastify
          // refuses the length mismatch from the count.
          if (received + chunk.length <= length) bytes.set(chunk, received);
          received += chunk.length;
        },
        end() {
          if (received === length) req.binaryBody = Buffer.from(memory, pad, length);
        },
        fail() {},
      },
      { closeFailsParse: true },
    );
    done(null, counted);
  };
}
