/**
 * A small InferenceService for testing the gRPC door on its own: a real onnxruntime session
 * (breast_cancer), an echo model for datatype round trips, a slow model for deadlines and
 * cancellation, and a model that fails with a chosen error. It is not the data plane; it only
 * behaves like one at the interface.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import type { Datatype, TensorData } from '../../../src/core/datatypes.js';
import { CancelledError, InferdError, ModelNotFoundError, type ErrorCode } from '../../../src/core/errors.js';
import type {
  InferenceRequest,
  InferenceResponse,
  ModelMetadata,
  ModelStatistics,
  RepositoryEntry,
  RequestContext,
  Tensor,
} from '../../../src/core/types.js';
import type { ControlCall, PipelineContext, Readiness, ServingPlane } from '../../../src/pipeline/types.js';
import { packageDefinition } from '../../../src/server/grpc/proto.js';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const modelsDir = resolve(repoRoot, '..', 'shared', 'models');

export interface Golden {
  inputs: Record<string, { shape: number[]; datatype: string; data: number[] }>;
  outputs: Record<string, { shape: number[]; datatype: string; data: number[] }>;
}

export function golden(model: string): Golden {
  return JSON.parse(readFileSync(resolve(modelsDir, model, 'golden.json'), 'utf8')) as Golden;
}

const ORT_TYPE: Partial<Record<string, Datatype>> = {
  float32: 'FP32',
  float64: 'FP64',
  int64: 'INT64',
  int32: 'INT32',
  bool: 'BOOL',
  uint8: 'UINT8',
};

const ORT_NAME: Partial<Record<Datatype, ort.Tensor.Type>> = {
  FP32: 'float32',
  FP64: 'float64',
  INT64: 'int64',
  INT32: 'int32',
  UINT8: 'uint8',
};

export interface Calls {
  /** Every context the service saw, in order. */
  contexts: RequestContext[];
  /** Requests to `slow` that ended because their signal aborted. */
  aborted: Array<{ requestId: string; reason: unknown }>;
}

export class TestService implements ServingPlane {
  readonly calls: Calls = { contexts: [], aborted: [] };
  serverReady = true;
  readonly loaded = new Map<string, boolean>([
    ['breast_cancer', true],
    ['echo', true],
    ['slow', true],
    ['failing', true],
  ]);
  private session: ort.InferenceSession | undefined;

  async init(): Promise<this> {
    this.session = await ort.InferenceSession.create(resolve(modelsDir, 'breast_cancer', '1', 'model.onnx'), {
      intraOpNumThreads: 1,
    });
    return this;
  }

  async close(): Promise<void> {
    await this.session?.release();
  }

  isDraining = false;

  readiness(): Readiness {
    return { ready: this.serverReady, status: this.serverReady ? 'ready' : 'not ready', failures: [] };
  }

  isModelReady(name: string, version?: string): boolean {
    this.known(name, version);
    return this.loaded.get(name) === true;
  }

  /** Runs `perform` as the pipeline's end would; the door's contexts are recorded. */
  async control<T>(ctx: PipelineContext, _call: ControlCall, perform: () => T | Promise<T>): Promise<T> {
    ctx.observed = true;
    return perform();
  }

  async reject(ctx: PipelineContext, error: unknown): Promise<never> {
    ctx.observed = true;
    throw error;
  }

  async live(): Promise<boolean> {
    return true;
  }

  async ready(): Promise<Readiness> {
    return this.readiness();
  }

  async startup(): Promise<boolean> {
    return true;
  }

  async metadata() {
    return { name: 'inferd', version: '0.1.0', extensions: ['model_repository', 'statistics', 'binary_tensor_data'] };
  }

  private known(name: string, version?: string): void {
    if (!this.loaded.has(name)) throw new ModelNotFoundError(name, version);
    if (version !== undefined && version !== '1') throw new ModelNotFoundError(name, version);
  }

  async modelReady(_ctx: PipelineContext, name: string, version?: string): Promise<boolean> {
    return this.isModelReady(name, version);
  }

  async modelMetadata(_ctx: PipelineContext, name: string, version?: string): Promise<ModelMetadata> {
    this.known(name, version);
    if (name === 'breast_cancer') {
      return {
        name,
        versions: ['1'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
        outputs: [
          { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
          { name: 'label', datatype: 'INT64', shape: [-1] },
        ],
        parameters: { max_batch_size: 64 },
      };
    }
    return { name, versions: ['1'], platform: 'test', inputs: [], outputs: [] };
  }

  async infer(context: PipelineContext, request: InferenceRequest): Promise<InferenceResponse> {
    context.observed = true;
    const name = context.model!;
    const version = context.version;
    this.calls.contexts.push(context);
    this.known(name, version);
    if (this.loaded.get(name) !== true) throw new InferdError('UNAVAILABLE', `model '${name}' is not loaded`);
    let outputs: Tensor[];
    if (name === 'breast_cancer') outputs = await this.runOnnx(request);
    else if (name === 'echo') outputs = request.inputs.map((t) => ({ ...t, name: t.name }));
    else if (name === 'slow') {
      outputs = await this.slow(request, context);
    } else {
      const code = String(request.parameters?.code ?? 'INTERNAL') as ErrorCode;
      throw new InferdError(code, `failing on purpose with ${code}`, { retryAfterSeconds: code === 'RESOURCE_EXHAUSTED' ? 2 : undefined });
    }
    if (request.outputs !== undefined && request.outputs.length > 0) {
      const wanted = request.outputs.map((o) => o.name);
      outputs = wanted.map((w) => {
        const found = outputs.find((o) => o.name === w);
        if (found === undefined) throw new InferdError('INVALID_ARGUMENT', `unknown output '${w}'`);
        const requested = request.outputs!.find((o) => o.name === w)!;
        return requested.parameters === undefined ? found : { ...found, parameters: requested.parameters };
      });
    }
    const response: InferenceResponse = { model_name: name, model_version: '1', outputs };
    if (request.id !== undefined) response.id = request.id;
    if (request.parameters !== undefined) response.parameters = request.parameters;
    return response;
  }

  private async runOnnx(request: InferenceRequest): Promise<Tensor[]> {
    const feeds: Record<string, ort.Tensor> = {};
    for (const input of request.inputs) {
      const type = ORT_NAME[input.datatype];
      if (type === undefined) throw new InferdError('INVALID_ARGUMENT', `input '${input.name}' has unsupported datatype ${input.datatype}`);
      feeds[input.name] = new ort.Tensor(type, input.data as Float32Array, input.shape);
    }
    const results = await this.session!.run(feeds);
    return Object.entries(results).map(([outputName, t]) => ({
      name: outputName,
      datatype: ORT_TYPE[t.type] ?? 'FP32',
      shape: [...t.dims],
      data: t.data as TensorData,
    }));
  }

  private slow(request: InferenceRequest, context: RequestContext): Promise<Tensor[]> {
    const ms = Number(request.parameters?.sleep_ms ?? 2000);
    return new Promise((resolveOutputs, reject) => {
      const timer = setTimeout(() => resolveOutputs(request.inputs), ms);
      // The gRPC door hands over a cancellation with AbortSignal's listener interface and reason.
      const signal = context.signal as AbortSignal | undefined;
      signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          this.calls.aborted.push({ requestId: context.requestId, reason: signal?.reason });
          reject(signal?.reason instanceof InferdError ? signal.reason : new CancelledError());
        },
        { once: true },
      );
    });
  }

  async repositoryIndex(_ctx: PipelineContext, readyOnly?: boolean): Promise<RepositoryEntry[]> {
    const entries: RepositoryEntry[] = [...this.loaded].map(([name, ready]) =>
      ready ? { name, version: '1', state: 'READY' } : { name, state: 'UNAVAILABLE', reason: 'unloaded' },
    );
    return readyOnly ? entries.filter((e) => e.state === 'READY') : entries;
  }

  async loadModel(_ctx: PipelineContext, name: string): Promise<void> {
    this.known(name);
    this.loaded.set(name, true);
  }

  async unloadModel(_ctx: PipelineContext, name: string): Promise<void> {
    this.known(name);
    this.loaded.set(name, false);
  }

  async modelStatistics(_ctx: PipelineContext, name?: string, version?: string): Promise<ModelStatistics[]> {
    if (name !== undefined) this.known(name, version);
    const names = name === undefined ? [...this.loaded.keys()] : [name];
    const d = (count: number, ns: number) => ({ count, ns });
    return names.map((n) => ({
      name: n,
      version: '1',
      last_inference: 1_700_000_000_123,
      inference_count: 64,
      execution_count: 2,
      inference_stats: {
        success: d(2, 5_000_000),
        fail: d(1, 1000),
        queue: d(2, 20_000),
        compute_input: d(2, 3000),
        compute_infer: d(2, 4_000_000),
        compute_output: d(2, 5000),
        cache_hit: d(0, 0),
        cache_miss: d(0, 0),
      },
      batch_stats: [{ batch_size: 32, compute_input: d(2, 3000), compute_infer: d(2, 4_000_000), compute_output: d(2, 5000) }],
    }));
  }
}

// ---- client side ----

export type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;

/** A generic client of the two services, built from the same .proto files as the server. */
export interface Clients {
  inference: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  health: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  close(): void;
}

export function connect(port: number, options: grpc.ChannelOptions = {}): Clients {
  const loaded = grpc.loadPackageDefinition(packageDefinition()) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  const address = `127.0.0.1:${port}`;
  options = { 'grpc.max_receive_message_length': -1, ...options };
  const inference = new loaded.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), options);
  const health = new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure(), options);
  return {
    inference: inference as Clients['inference'],
    health: health as Clients['health'],
    close() {
      inference.close();
      health.close();
    },
  };
}

export interface UnaryResult<T> {
  response: T;
  headers: grpc.Metadata;
}

/** Calls a unary method, resolving with the response and the initial metadata. */
export function call<T = Record<string, unknown>>(
  client: Clients['inference'],
  method: string,
  request: object,
  options: { metadata?: grpc.Metadata; deadline?: number } = {},
): Promise<UnaryResult<T>> {
  return new Promise((resolvePromise, reject) => {
    let headers = new grpc.Metadata();
    const fn = client[method] as (
      req: object,
      md: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: Callback<T>,
    ) => grpc.ClientUnaryCall;
    const c = fn.call(client, request, options.metadata ?? new grpc.Metadata(), options.deadline === undefined ? {} : { deadline: options.deadline }, (error, value) =>
      error ? reject(error) : resolvePromise({ response: value as T, headers }),
    );
    c.on('metadata', (md: grpc.Metadata) => {
      headers = md;
    });
  });
}

/** Expects a call to fail; resolves with its error. */
export async function callError(client: Clients['inference'], method: string, request: object, options: { metadata?: grpc.Metadata; deadline?: number } = {}): Promise<grpc.ServiceError> {
  try {
    await call(client, method, request, options);
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error(`${method} was expected to fail`);
}

export interface StreamAnswer<T> {
  error_message: string;
  infer_response: T;
}

/** Sends `requests` on one ModelStreamInfer stream, ends it, and resolves with every answer once the server ends it too. */
export function streamInfer<T>(client: Clients['inference'], requests: object[]): Promise<Array<StreamAnswer<T>>> {
  const stream = (client.ModelStreamInfer as () => grpc.ClientDuplexStream<object, StreamAnswer<T>>).call(client);
  const answers: Array<StreamAnswer<T>> = [];
  const done = new Promise<Array<StreamAnswer<T>>>((resolve, reject) => {
    stream.on('data', (a: StreamAnswer<T>) => answers.push(a));
    stream.on('end', () => resolve(answers));
    stream.on('error', reject);
  });
  for (const request of requests) stream.write(request);
  stream.end();
  return done;
}
