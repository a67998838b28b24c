/**
 * Large gRPC requests whose one tensor reaches the model's worker in the memory the message
 * arrived in. grpc-js joins a message's HTTP/2 frames into a buffer of its own (the 5-byte gRPC
 * prefix, then the message), and the decoded `raw_input_contents` are views into it. Sending that
 * view to the worker as it was meant one more copy: a fresh buffer for the tensor's bytes, either
 * to align them for their element size (they start wherever protobuf put them) or to own them
 * for the transfer. Instead, the tensor's bytes are moved down within the message's own memory to
 * an 8-byte boundary (over the protobuf bytes before them, already decoded), and that memory is
 * lent to the tensor and transferred whole, as for binary REST bodies (binary-body.ts).
 */
import { lendToWorker } from '../../core/tensor.js';
import type { InferenceRequest } from '../../core/types.js';
import type { ModelInferRequestMsg } from '../../codecs/grpc-messages.js';

/** Below this, the copy costs less than the care taken here. */
export const OWN_MEMORY_MIN_BYTES = 64 * 1024;
/** At most this many bytes before the message in its memory: grpc-js's 5-byte prefix. */
const MAX_PREFIX_BYTES = 8;
/** Alignment the tensor's bytes are moved to: the largest element size (FP64, INT64). */
const ALIGNMENT = 8;

/** Memory that holds one received message and nothing else, as noted by the deserializer. */
const messageMemory = new WeakSet<ArrayBuffer>();

/**
 * Notes the memory of a message about to be decoded when nothing but the message lives in it:
 * the message runs to the memory's end and starts within a few bytes of its beginning. A view
 * into shared memory (Node's 8 KB pool, a larger read buffer) never qualifies.
 */
export function noteMessageMemory(bytes: Uint8Array): void {
  const memory = bytes.buffer;
  if (
    bytes.byteLength >= OWN_MEMORY_MIN_BYTES &&
    memory instanceof ArrayBuffer &&
    bytes.byteOffset <= MAX_PREFIX_BYTES &&
    bytes.byteOffset + bytes.byteLength === memory.byteLength
  ) {
    messageMemory.add(memory);
  }
}

/**
 * When the request carries one input, in `raw_input_contents`, inside memory of the message's
 * own: moves its bytes down to an 8-byte boundary in that memory (their view in `msg` follows)
 * and returns the memory, to be lent once the request is decoded (lendSoleRawInput). Otherwise
 * changes nothing and returns undefined.
 */
export function alignSoleRawInput(msg: ModelInferRequestMsg): ArrayBuffer | undefined {
  const raw = msg.raw_input_contents;
  if (raw === undefined || raw.length !== 1 || msg.inputs?.length !== 1) return undefined;
  const bytes = raw[0]!;
  const memory = bytes.buffer;
  if (!(memory instanceof ArrayBuffer) || !messageMemory.has(memory)) return undefined;
  // Typed contents beside raw bytes are refused by the decoder; their views would sit in the bytes moved over.
  const contents = msg.inputs[0]!.contents;
  if (contents !== undefined && contents !== null && Object.values(contents).some((field) => Array.isArray(field) && field.length > 0)) return undefined;
  const misalignment = bytes.byteOffset % ALIGNMENT;
  if (misalignment !== 0) {
    const target = bytes.byteOffset - misalignment;
    new Uint8Array(memory).copyWithin(target, bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    raw[0] = Buffer.from(memory, target, bytes.byteLength);
  }
  return memory;
}

/** Lends `memory` to the request's only tensor when that tensor views it (decoded where it lies). */
export function lendSoleRawInput(request: InferenceRequest, memory: ArrayBuffer): void {
  if (request.inputs.length !== 1) return;
  const data = request.inputs[0]!.data;
  if (!Array.isArray(data) && (data as ArrayBufferView).buffer === memory) lendToWorker(memory);
}
