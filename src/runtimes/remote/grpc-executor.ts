/**
 * A remote model over the Open Inference Protocol's gRPC service (`remote.url: grpc://host:port`).
 * Inputs go as `raw_input_contents`; outputs are read from raw bytes or typed contents, whichever
 * the upstream sends (Triton and inferd send raw, some servers send typed). Errors map onto the
 * error model as the HTTP client's do: unreachable, overloaded or failing upstream → UNAVAILABLE,
 * its deadline → DEADLINE_EXCEEDED, its INVALID_ARGUMENT → the caller's.
 */
import * as grpc from '@grpc/grpc-js';
import { DeadlineExceededError, InferdError, InvalidInputError, UnavailableError } from '../../core/errors.js';
import type { Tensor } from '../../core/types.js';
import { decodeInferRequest } from '../../codecs/grpc.js';
import type { ModelInferRequestMsg, ModelInferResponseMsg } from '../../codecs/grpc-messages.js';
import { toRawBytes } from '../../codecs/raw.js';
import { packageDefinition } from '../../server/grpc/proto.js';
import { RemoteClient, type RemoteOptions } from './client.js';

type Unary = (request: object, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response: unknown) => void) => grpc.ClientUnaryCall;

export class GrpcRemoteExecutor extends RemoteClient {
  private readonly client: grpc.Client & Record<string, Unary>;
  /** Calls in progress and how to fail each (the shutdown deadline passed). */
  private readonly running = new Map<grpc.ClientUnaryCall, (reason: InferdError) => void>();
  private readonly model: string;

  constructor(name: string, options: RemoteOptions, executionTimeoutMs: number) {
    super(name, options, executionTimeoutMs);
    const address = options.url.replace(/^grpc:\/\//, '').replace(/\/+$/, '');
    const loaded = grpc.loadPackageDefinition(packageDefinition()) as unknown as { inference: { GRPCInferenceService: grpc.ServiceClientConstructor } };
    this.client = new loaded.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 }) as grpc.Client & Record<string, Unary>;
    this.model = options.model ?? name;
  }

  protected async fetchMetadata(timeoutMs: number): Promise<{ inputs?: unknown; outputs?: unknown; where: string }> {
    const body = (await this.call('ModelMetadata', { name: this.model, version: this.options.version ?? '' }, timeoutMs, 'read the metadata of')) as { inputs?: unknown; outputs?: unknown };
    return { inputs: body.inputs, outputs: body.outputs, where: this.options.url };
  }

  protected async run(inputs: Tensor[], outputs: string[], timeoutMs: number): Promise<Tensor[]> {
    const request: ModelInferRequestMsg = {
      model_name: this.model,
      model_version: this.options.version ?? '',
      inputs: inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
      outputs: outputs.map((name) => ({ name })),
      raw_input_contents: inputs.map((t) => toRawBytes(t.datatype, t.data)),
    };
    const answer = (await this.call('ModelInfer', request, timeoutMs, 'run')) as ModelInferResponseMsg;
    // An answer's outputs have the layout of a request's inputs: one decoder checks both.
    return this.decodeAnswer(() => decodeInferRequest({ model_name: this.model, inputs: answer.outputs, raw_input_contents: answer.raw_output_contents }).request.inputs);
  }

  abortRunning(reason: InferdError): void {
    for (const [call, fail] of this.running) {
      fail(reason);
      call.cancel();
    }
  }

  override close(): Promise<void> {
    this.client.close();
    return super.close();
  }

  private call(method: 'ModelMetadata' | 'ModelInfer', request: object, timeoutMs: number, what: string): Promise<unknown> {
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.options.headers)) metadata.set(k.toLowerCase(), v);
    return new Promise((resolve, reject) => {
      const call = this.client[method]!.call(this.client, request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        this.running.delete(call);
        if (error) reject(upstreamError(this.name, error, what, timeoutMs));
        else resolve(response);
      });
      this.running.set(call, reject);
    });
  }
}

function upstreamError(name: string, error: grpc.ServiceError, what: string, timeoutMs: number): InferdError {
  const said = `remote model '${name}' (${what}) answered ${grpc.status[error.code] ?? error.code}: ${(error.details ?? error.message).slice(0, 500)}`;
  switch (error.code) {
    case grpc.status.INVALID_ARGUMENT:
      return new InvalidInputError(said);
    case grpc.status.DEADLINE_EXCEEDED:
      return new DeadlineExceededError(`remote model '${name}' did not answer within ${timeoutMs} ms`);
    default:
      return new UnavailableError(said, 1);
  }
}
