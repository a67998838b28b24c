/** Shapes shared by the load generator's parts. */

/** A tensor as model metadata describes it; -1 marks a dynamic dimension. */
export interface TensorSpec {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions: readonly string[];
  readonly platform: string;
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

/**
 * One input tensor of a request, with concrete shape and row-major values.
 * BOOL values are 0/1, BYTES values are strings, every other type is a number.
 */
export interface RequestTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly values: readonly number[] | readonly string[];
}

/** The inputs of one request. */
export type RequestInputs = readonly RequestTensor[];

export type Protocol = 'http' | 'grpc';

/** The outcome of one request as a transport reports it. */
export interface RequestOutcome {
  /** True for a 2xx HTTP status or gRPC OK. */
  readonly ok: boolean;
  /** Key under which a failure is counted: an HTTP status, `grpc:<CODE>`, `connection`, `timeout`. */
  readonly errorKey?: string;
  /** Short text of the first failure of this kind, for the report. */
  readonly errorMessage?: string;
}

export type OutcomeCallback = (outcome: RequestOutcome) => void;

/**
 * Sends pre-encoded requests. A transport owns its connections; `send` never throws, it reports
 * failures through the callback so that a load loop stays alive.
 */
export interface Transport {
  /** Sends payload number `index` (modulo the payload count) and calls back once. */
  send(index: number, done: OutcomeCallback): void;
  /** Closes connections; requests still in flight are abandoned. */
  close(): Promise<void>;
}
