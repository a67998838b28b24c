/**
 * The thread that decodes large JSON infer requests off the event loop. The body arrives as a
 * transferred buffer; the tensors go back with their buffers transferred, so no element is
 * copied on the way in or out. A refusal crosses as plain data (an error's class would not).
 */
import { Piscina } from 'piscina';
import { InferdError } from '../core/errors.js';
import { transferablesOf } from '../core/tensor.js';
import type { InferenceRequest } from '../core/types.js';
import { decodeJsonInferRequest } from './json-request.js';
import type { JsonDecodeReply, JsonDecodeTask } from './json-decode-pool.js';

export default function decode(task: JsonDecodeTask): JsonDecodeReply | ReturnType<typeof Piscina.move> {
  let request: InferenceRequest;
  try {
    request = decodeJsonInferRequest(task.body);
  } catch (error) {
    if (error instanceof InferdError) return { refused: { code: error.code, message: error.message } };
    throw error;
  }
  const transfer = transferablesOf(request.inputs);
  const reply: JsonDecodeReply = { request };
  if (transfer.length === 0) return reply;
  return Piscina.move(new TransferableReply(reply, transfer) as unknown as ArrayBuffer);
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
