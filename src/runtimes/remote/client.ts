/**
 * What both remote clients (HTTP and gRPC) share: the signature read from the remote's model
 * metadata, the bounds of a run, and the outputs handed back as asked for, in the declared shape.
 * A subclass speaks the wire protocol: `fetchMetadata` and `run`.
 */
import { RuntimeError, UnavailableError, type InferdError } from '../../core/errors.js';
import { isDatatype } from '../../core/datatypes.js';
import type { Tensor, TensorMetadata } from '../../core/types.js';
import type { RunTimings } from '../types.js';

export interface RemoteOptions {
  url: string;
  model?: string;
  version?: string;
  timeout_ms: number;
  connect_timeout_ms: number;
  headers: Record<string, string>;
}

export abstract class RemoteClient {
  private closed = false;
  /** The remote's output signature, read by ready(). */
  private declaredOutputs: TensorMetadata[] = [];

  constructor(
    protected readonly name: string,
    protected readonly options: RemoteOptions,
    private readonly executionTimeoutMs: number,
  ) {}

  /** The remote's model metadata (its `inputs` and `outputs` fields), and where it was read, for messages. */
  protected abstract fetchMetadata(timeoutMs: number): Promise<{ inputs?: unknown; outputs?: unknown; where: string }>;

  /** One upstream call: the decoded outputs the remote answered. */
  protected abstract run(inputs: Tensor[], outputs: string[], timeoutMs: number): Promise<Tensor[]>;

  abstract abortRunning(reason: InferdError): void;

  /** Reads the signature from the remote's model metadata. */
  async ready(): Promise<{ inputs: TensorMetadata[]; outputs: TensorMetadata[] }> {
    const metadata = await this.fetchMetadata(this.options.connect_timeout_ms);
    const inputs = readSignature(metadata.inputs, 'inputs', metadata.where);
    this.declaredOutputs = readSignature(metadata.outputs, 'outputs', metadata.where);
    return { inputs, outputs: this.declaredOutputs };
  }

  async infer(inputs: Tensor[], outputs: string[]): Promise<{ outputs: Tensor[]; timings: RunTimings }> {
    if (this.closed) throw new UnavailableError(`remote model '${this.name}' is closed`);
    const started = performance.now();
    const answered = await this.run(inputs, outputs, Math.min(this.options.timeout_ms, this.executionTimeoutMs));
    const inferNs = (performance.now() - started) * 1e6;
    return { outputs: conformOutputs(this.name, answered, outputs, this.declaredOutputs), timings: { inputNs: 0, inferNs, outputNs: 0 } };
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /** Decodes the remote's outputs with `decode`; what does not decode is the remote's fault. */
  protected decodeAnswer(decode: () => Tensor[]): Tensor[] {
    try {
      return decode();
    } catch (error) {
      throw new RuntimeError(`remote model '${this.name}' answered outputs that do not decode: ${(error as Error).message}`);
    }
  }
}

/** The remote's `inputs` or `outputs` metadata; dims may come as numbers or (gRPC int64) strings. */
export function readSignature(list: unknown, field: 'inputs' | 'outputs', where: string): TensorMetadata[] {
  if (!Array.isArray(list)) throw new RuntimeError(`${where}: the remote's metadata has no '${field}'`);
  return list.map((t: unknown, i) => {
    const m = t as { name?: unknown; datatype?: unknown; shape?: unknown };
    const dims = Array.isArray(m.shape) ? m.shape : undefined;
    const shape = dims?.map((d) => (typeof d === 'number' ? d : typeof d === 'string' && /^-?\d+$/.test(d) ? Number(d) : Number.NaN)) ?? [];
    if (typeof m.name !== 'string' || !isDatatype(m.datatype) || !dims || !shape.every((d) => Number.isInteger(d))) {
      throw new RuntimeError(`${where}: the remote's ${field}[${i}] is not a tensor description`);
    }
    return { name: m.name, datatype: m.datatype, shape };
  });
}

/**
 * The requested outputs, in the requested order: a remote may answer more than asked (MLServer
 * sends every output), and its answer is sliced per request by position. An output that has one
 * trailing dimension of 1 more than its metadata declares (MLServer's numpy codec turns [n]
 * into [n, 1]) takes the declared shape; the data is the same.
 */
export function conformOutputs(model: string, answered: Tensor[], requested: string[], declared: TensorMetadata[]): Tensor[] {
  return requested.map((name) => {
    const tensor = answered.find((t) => t.name === name);
    if (!tensor) throw new RuntimeError(`remote model '${model}' answered without the output '${name}' (it sent ${answered.map((t) => t.name).join(', ') || 'none'})`);
    const shape = declared.find((m) => m.name === name)?.shape;
    return shape && hasExtraUnitDim(tensor.shape, shape) ? { ...tensor, shape: tensor.shape.slice(0, -1) } : tensor;
  });
}

function hasExtraUnitDim(actual: number[], declared: number[]): boolean {
  if (actual.length !== declared.length + 1 || actual[actual.length - 1] !== 1) return false;
  return declared.every((d, i) => d === -1 || d === actual[i]);
}
