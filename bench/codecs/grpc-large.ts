/**
 * Main-thread cost of taking in a large gRPC request up to its hand-off to the model's worker,
 * the door's part that does not depend on the machine's other load: a ModelInferRequest with one
 * 3x224x224 FP32 tensor in raw_input_contents, in memory of its own as grpc-js hands it over
 * (5-byte prefix, then the message), decoded by the door's deserializer and codec, made ready for
 * the transfer, and posted to a worker thread that drops it. Two paths alternate in the same
 * process: the tensor's bytes moved to an 8-byte boundary within the message's memory and that
 * memory lent to the worker (the door's path), and a fresh copy of the bytes, aligned and owned
 * (the path before).
 *
 *   npx tsx bench/codecs/grpc-large.ts [--rounds 10] [--requests 200]
 */
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ownBuffers, transferablesOf } from '../../src/core/tensor.js';
import { decodeInferRequest } from '../../src/codecs/grpc.js';
import type { ModelInferRequestMsg } from '../../src/codecs/grpc-messages.js';
import { alignSoleRawInput, lendSoleRawInput, noteMessageMemory } from '../../src/server/grpc/message-memory.js';
import { INFERENCE_SERVICE, serviceDefinition } from '../../src/server/grpc/proto.js';

const { values: flags } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, requests: { type: 'string', default: '200' } } });
const ROUNDS = Number(flags.rounds);
const REQUESTS = Number(flags.requests);

const method = serviceDefinition(INFERENCE_SERVICE).ModelInfer!;
const values = Float32Array.from({ length: 3 * 224 * 224 }, (_, i) => Math.sin(i));
const encoded = method.requestSerialize({
  model_name: 'mobilenet_v2',
  id: 'x',
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '3', '224', '224'] }],
  raw_input_contents: [Buffer.from(values.buffer)],
}) as Buffer;

const worker = new Worker(`require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m.inputs.length));`, { eval: true });
const answered = (): Promise<void> => new Promise((resolve) => worker.once('message', () => resolve()));

/** One request: the message in memory of its own, decoded, posted; returns main-thread ms. */
async function once(inPlace: boolean): Promise<number> {
  const framed = Buffer.allocUnsafeSlow(encoded.length + 5);
  encoded.copy(framed, 5);
  const started = performance.now();
  const bytes = framed.subarray(5);
  if (inPlace) noteMessageMemory(bytes);
  const msg = method.requestDeserialize(bytes) as ModelInferRequestMsg;
  const memory = inPlace ? alignSoleRawInput(msg) : undefined;
  const { request } = decodeInferRequest(msg);
  if (memory !== undefined) lendSoleRawInput(request, memory);
  const transfer = transferablesOf(request.inputs);
  worker.postMessage({ inputs: ownBuffers(request.inputs) }, transfer);
  const spent = performance.now() - started;
  await answered();
  return spent;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
const results = { inPlace: [] as number[], copy: [] as number[] };
for (let i = 0; i < 200; i++) await once(i % 2 === 0); // warm-up
for (let round = 0; round < ROUNDS; round++) {
  for (const inPlace of round % 2 === 0 ? [true, false] : [false, true]) {
    let total = 0;
    for (let i = 0; i < REQUESTS; i++) total += await once(inPlace);
    (inPlace ? results.inPlace : results.copy).push((1000 * total) / REQUESTS);
  }
}
await worker.terminate();
console.log(`${ROUNDS} rounds of ${REQUESTS} requests, main-thread µs per request (median of rounds; range)`);
for (const [name, list] of Object.entries(results)) {
  console.log(`  ${name === 'inPlace' ? 'moved in place, memory lent' : 'fresh copy (before)      '}  ${median(list).toFixed(1)}  (${Math.min(...list).toFixed(1)}-${Math.max(...list).toFixed(1)})`);
}
