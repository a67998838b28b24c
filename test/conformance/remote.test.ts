/**
 * The same tritonclient checks against an inferd whose models are `runtime: remote`: they live in
 * a second inferd process (reached over HTTP, then over gRPC) and in MLServer (HTTP, then gRPC).
 * Metadata comes from the remote, outputs must equal the golden outputs, and errors keep their
 * statuses on the way through.
 *
 * MLServer serves the ONNX models only: the example tokenizer is a JavaScript model, so next to
 * MLServer it stays a local model of the inferd in front.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMLServer, type MLServer } from '../support/mlserver.js';
import { EXAMPLES } from '../support/paths.js';
import { getJson, makeRepository, postJson, startChild, type ChildServer } from '../support/server.js';
import { callError, call, connect, golden } from '../server/grpc/fixture.js';
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
    // The examples, and a copy of breast_cancer that the error checks unload under a remote model.
    makeRepository({ ...Object.fromEntries(Object.keys(SERVING).map((name) => [name, { copyFrom: join(EXAMPLES, name) }])), spare: { copyFrom: join(EXAMPLES, 'breast_cancer') } }).then((repository) =>
      startChild(['--model-repository', repository, '--log-level', 'warn']),
    ),
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

describe('errors that start at the remote', () => {
  let front: ChildServer;
  let repository: string;
  const remote = (url: string, model: string) => `runtime: remote\nmax_batch_size: 64\nwarmup: []\nremote: { url: "${url}", model: ${model} }\n`;
  const features = golden('breast_cancer').inputs.features!;
  const request = { inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape, data: features.data }] };
  const grpcRequest = (model: string) => ({
    model_name: model,
    inputs: [{ name: 'features', datatype: 'FP32', shape: features.shape }],
    raw_input_contents: [Buffer.from(new Float32Array(features.data).buffer)],
  });

  beforeAll(async () => {
    repository = await makeRepository({
      spare: { config: remote(upstream!.url, 'spare') },
      spare_grpc: { config: remote(`grpc://127.0.0.1:${upstream!.grpcPort}`, 'spare') },
    });
    front = await startChild(['--model-repository', repository, '--log-level', 'warn']);
  }, 120_000);

  afterAll(async () => {
    expect(await front?.stop(), front?.output()).toBe(0);
  }, 60_000);

  it('a remote model that the remote does not have fails to load, and says why', async () => {
    for (const [name, url] of [
      ['missing', upstream!.url],
      ['missing_grpc', `grpc://127.0.0.1:${upstream!.grpcPort}`],
    ] as const) {
      await mkdir(join(repository, name, '1'), { recursive: true });
      await writeFile(join(repository, name, 'config.yaml'), remote(url, 'no_such_model'));
      const load = await postJson(`${front.url}/v2/repository/models/${name}/load`, {});
      expect(load.status, JSON.stringify(load.body)).not.toBe(200);
      expect(load.body.error).toMatch(/no_such_model/);
    }
    const index = await postJson(`${front.url}/v2/repository/index`, {});
    for (const name of ['missing', 'missing_grpc']) {
      const entry = (index.body as { name: string; state: string; reason?: string }[]).find((m) => m.name === name);
      expect(entry?.state, JSON.stringify(entry)).toBe('UNAVAILABLE');
      expect(entry?.reason, JSON.stringify(entry)).toMatch(/no_such_model/);
    }
    expect((await getJson(`${front.url}/v2/models/missing/ready`)).status).not.toBe(200);
    const answer = await postJson(`${front.url}/v2/models/missing/infer`, request);
    expect(answer.status, JSON.stringify(answer.body)).toBe(503);
  });

  it('a remote model unloaded at the remote answers UNAVAILABLE over HTTP and gRPC, then serves again once it is back', async () => {
    const clients = connect(front.grpcPort);
    try {
      expect((await postJson(`${upstream!.url}/v2/repository/models/spare/unload`, {})).status).toBe(200);
      const answer = await postJson(`${front.url}/v2/models/spare/infer`, request);
      expect(answer.status, JSON.stringify(answer.body)).toBe(503);
      expect(answer.body.error).toMatch(/remote model 'spare' answered 503: model 'spare' is unavailable/);
      const error = await callError(clients.inference, 'ModelInfer', grpcRequest('spare_grpc'));
      expect(error.code, error.details).toBe(grpc.status.UNAVAILABLE);
      expect(error.details).toMatch(/remote model 'spare_grpc' .*UNAVAILABLE: model 'spare' is unavailable/);

      expect((await postJson(`${upstream!.url}/v2/repository/models/spare/load`, {})).status).toBe(200);
      const labels = golden('breast_cancer').outputs.label!.data;
      const again = await postJson(`${front.url}/v2/models/spare/infer`, request);
      expect(again.status, JSON.stringify(again.body)).toBe(200);
      expect(again.body.outputs.find((o: { name: string }) => o.name === 'label').data).toEqual(labels);
      const { response } = await call<{ outputs: { name: string }[]; raw_output_contents: Buffer[] }>(clients.inference, 'ModelInfer', grpcRequest('spare_grpc'));
      const at = response.outputs.findIndex((o) => o.name === 'label');
      const raw = response.raw_output_contents[at]!;
      expect(Array.from(new BigInt64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength)), Number)).toEqual(labels);
    } finally {
      clients.close();
    }
  });
});
