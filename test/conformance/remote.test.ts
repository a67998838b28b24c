/**
 * The same tritonclient checks against an inferd whose models are `runtime: remote`: they live in
 * a second inferd process (reached over HTTP, then over gRPC) and in MLServer (HTTP, then gRPC).
 * Metadata comes from the remote, outputs must equal the golden outputs, and errors keep their
 * statuses on the way through.
 *
 * MLServer serves the ONNX models only: the example tokenizer is a JavaScript model, so next to
 * MLServer it stays a local model of the inferd in front.
 */
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startMLServer, type MLServer } from '../support/mlserver.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, startChild, type ChildServer } from '../support/server.js';
import { describeChecks } from './checks.js';

/** How the inferd in front batches each model (as the example repository does). */
const SERVING: Record<string, string> = {
  breast_cancer: 'max_batch_size: 64\ndynamic_batching: { max_queue_delay_microseconds: 0 }',
  digits: 'max_batch_size: 32\ndynamic_batching: { max_queue_delay_microseconds: 500 }',
  text_encoder_tiny: 'max_batch_size: 16\ndynamic_batching: { max_queue_delay_microseconds: 1000 }\nragged_inputs: { input_ids: { pad: 0 }, attention_mask: { pad: 0 } }',
  text_tokenizer: 'max_batch_size: 0',
};

/** A repository of remote models at `url`; the models in `local` are copied from the examples instead. */
function remoteRepository(url: string, local: string[] = []): Promise<string> {
  return makeRepository(
    Object.fromEntries(
      Object.entries(SERVING).map(([name, serving]) =>
        local.includes(name) ? [name, { copyFrom: join(EXAMPLES, name) }] : [name, { config: `runtime: remote\n${serving}\nremote: { url: "${url}", timeout_ms: 10000 }\n` }],
      ),
    ),
  );
}

const startFront = async (url: string, local: string[] = []): Promise<ChildServer> =>
  startChild(['--model-repository', await remoteRepository(url, local), '--log-level', 'warn']);

let upstream: ChildServer | undefined;
let mlserver: MLServer | undefined;

beforeAll(async () => {
  [upstream, mlserver] = await Promise.all([
    startChild(['--model-repository', EXAMPLES, '--log-level', 'warn']),
    startMLServer([
      {
        name: 'breast_cancer',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
          { name: 'label', datatype: 'INT64', shape: [-1] },
        ],
      },
      { name: 'digits', inputs: [{ name: 'image', datatype: 'FP32', shape: [-1, 1, 8, 8] }], outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }] },
      {
        name: 'text_encoder_tiny',
        inputs: [
          { name: 'input_ids', datatype: 'INT64', shape: [-1, -1] },
          { name: 'attention_mask', datatype: 'INT64', shape: [-1, -1] },
        ],
        outputs: [{ name: 'embedding', datatype: 'FP32', shape: [-1, 128] }],
      },
    ]),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([upstream?.stop(), mlserver?.stop()]);
}, 60_000);

describeChecks('remote models in a second inferd, over HTTP', () => startFront(upstream!.url));
describeChecks('remote models in a second inferd, over gRPC', () => startFront(`grpc://127.0.0.1:${upstream!.grpcPort}`));
describeChecks('remote models in MLServer, over HTTP', () => startFront(mlserver!.url, ['text_tokenizer']));
describeChecks('remote models in MLServer, over gRPC', () => startFront(mlserver!.grpcUrl, ['text_tokenizer']));
