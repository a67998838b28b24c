/**
 * Builds the one RequestContext every door hands the data plane: the correlation id (and the
 * key it came under, so the answer echoes it there), the deadline, priority and cancellation,
 * from HTTP headers, gRPC metadata or Kafka headers alike. Doors call `createContext` once per
 * request; nothing else builds a context.
 */
import { randomBytes } from 'node:crypto';
import { InvalidInputError } from '../core/errors.js';
import type { Cancellation, DoorName, InferenceRequest, RequestContext } from '../core/types.js';
import type { PipelineContext } from './types.js';

/** Reads one header / metadata value by lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

export interface ContextSource {
  door: DoorName;
  header: HeaderReader;
  /** The correlation id when the door has already read it (correlationIdOf). */
  correlation?: { id: string; key: string };
  /** The model and version the request names (path, message fields, Kafka headers). */
  model?: string;
  version?: string;
  /** A deadline the transport carries itself (gRPC); absolute Date.now() milliseconds. */
  deadline?: number;
  signal?: Cancellation;
  /** Extracts the caller's W3C trace context (tracing on). */
  traceContext?: (header: HeaderReader) => unknown;
}

const PROTOCOL: Record<DoorName, RequestContext['protocol']> = {
  'rest.v2': 'rest',
  'rest.v1': 'rest',
  'rest.binary': 'rest',
  admin: 'rest',
  'grpc.unary': 'grpc',
  'grpc.stream': 'grpc',
  kafka: 'kafka',
  batch: 'batch',
  internal: 'internal',
};

/** Keys a caller's correlation id is read from, in order of preference. */
export const CORRELATION_KEYS = ['x-correlation-id', 'x-request-id'] as const;
/** Correlation ids go into every log line and answer: only short, plain tokens are taken. */
const CORRELATION_ID = /^[A-Za-z0-9._:/+=@-]{1,128}$/;
const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/;

/**
 * Generated request ids: 16 hex digits drawn at random when the process starts, a dash, and a
 * sequence number in hex (`3f9c0a1be27d4c55-1a2b`). Unique across processes and restarts (a
 * fresh prefix each time) at the cost of one short string per request, where a random UUID per
 * request costs several allocations.
 */
const ID_PREFIX = `${randomBytes(8).toString('hex')}-`;
let idSequence = 0;

/** A new request id (see ID_PREFIX). */
export function newRequestId(): string {
  return ID_PREFIX + (++idSequence).toString(16);
}

/** The caller's correlation id and the key it came under, or a new id under `x-request-id`. */
export function correlationIdOf(header: HeaderReader): { id: string; key: string } {
  for (const key of CORRELATION_KEYS) {
    const value = header(key)?.trim();
    if (value !== undefined && CORRELATION_ID.test(value)) return { id: value, key };
  }
  const trace = TRACEPARENT.exec(header('traceparent')?.trim() ?? '');
  if (trace !== null && !/^0+$/.test(trace[1]!)) return { id: trace[1]!, key: 'x-request-id' };
  return { id: newRequestId(), key: 'x-request-id' };
}

const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * The deadline a request's headers ask for: `X-Request-Timeout` (milliseconds) or `grpc-timeout`
 * (gRPC's wire format, e.g. `250m`); undefined when neither is sent.
 */
export function headerDeadline(header: HeaderReader, now = Date.now()): number | undefined {
  let deadline: number | undefined;
  const ms = header('x-request-timeout');
  if (ms !== undefined) {
    const value = Number(ms.trim());
    if (ms.trim() === '' || !Number.isFinite(value) || value <= 0) {
      throw new InvalidInputError(`X-Request-Timeout must be a positive number of milliseconds, got '${ms.slice(0, 32)}'`);
    }
    deadline = now + value;
  }
  const grpcTimeout = header('grpc-timeout');
  if (grpcTimeout !== undefined) {
    const m = GRPC_TIMEOUT.exec(grpcTimeout.trim());
    if (m === null) throw new InvalidInputError(`grpc-timeout must be up to 8 digits and a unit (H, M, S, m, u, n), got '${grpcTimeout.slice(0, 32)}'`);
    const at = now + Number(m[1]) * GRPC_UNIT_MS[m[2]!]!;
    deadline = deadline === undefined ? at : Math.min(deadline, at);
  }
  return deadline;
}

/**
 * The context of one request. Throws InvalidInputError when a header is malformed; the
 * context is still needed to answer that, so doors use `createContext` inside a try and fall
 * back to `minimalContext`.
 */
export function createContext(source: ContextSource): PipelineContext {
  const { id, key } = source.correlation ?? correlationIdOf(source.header);
  const ctx: PipelineContext = {
    requestId: id,
    requestIdKey: key,
    protocol: PROTOCOL[source.door],
    door: source.door,
    header: source.header,
    responseHeaders: {},
  };
  if (source.model !== undefined) ctx.model = source.model;
  if (source.version !== undefined && source.version !== '') ctx.version = source.version;
  if (source.signal) ctx.signal = source.signal;
  if (source.traceContext) ctx.trace = source.traceContext(source.header);
  let deadline = source.deadline;
  const fromHeaders = headerDeadline(source.header);
  if (fromHeaders !== undefined) deadline = deadline === undefined ? fromHeaders : Math.min(deadline, fromHeaders);
  if (deadline !== undefined && Number.isFinite(deadline)) ctx.deadline = deadline;
  return ctx;
}

/** A context carrying only the correlation id: for answering a request whose headers are malformed. */
export function minimalContext(source: Pick<ContextSource, 'door' | 'header' | 'model' | 'correlation'>): PipelineContext {
  const { id, key } = source.correlation ?? correlationIdOf(source.header);
  const ctx: PipelineContext = { requestId: id, requestIdKey: key, protocol: PROTOCOL[source.door], door: source.door, header: source.header, responseHeaders: {} };
  if (source.model !== undefined) ctx.model = source.model;
  return ctx;
}

/** Header reader over a Node-style header record (HTTP, Kafka). */
export function recordReader(headers: Record<string, string | string[] | undefined>): HeaderReader {
  return (name) => {
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
}

/**
 * Applies the request's own parameters that shape its handling (OIP/Triton `priority`, and
 * `timeout` in microseconds) to the context, refusing values of the wrong type or range.
 */
export function applyRequestParameters(ctx: RequestContext, request: InferenceRequest): void {
  const params = request.parameters;
  if (params === undefined) return;
  const priority = params['priority'];
  if (priority !== undefined) {
    const p = typeof priority === 'bigint' ? Number(priority) : priority;
    if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < 0) {
      throw new InvalidInputError(`parameter 'priority' must be a non-negative integer, got ${describe(priority)}`);
    }
    ctx.priority = p;
  }
  const timeout = params['timeout'];
  if (timeout !== undefined) {
    const t = typeof timeout === 'bigint' ? Number(timeout) : timeout;
    if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
      throw new InvalidInputError(`parameter 'timeout' must be a positive number of microseconds, got ${describe(timeout)}`);
    }
    const at = Date.now() + t / 1000;
    ctx.deadline = ctx.deadline === undefined ? at : Math.min(ctx.deadline, at);
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? `the string '${value.slice(0, 32)}'` : `${typeof value} ${String(value).slice(0, 32)}`;
}

/**
 * A context for an in-process caller (tests, batch scoring, embedding code): no headers unless
 * given; a new correlation id unless one is given.
 */
export function callContext(
  model: string | undefined,
  version?: string,
  options: { door?: DoorName; headers?: Record<string, string>; requestId?: string } = {},
): PipelineContext {
  const headers: Record<string, string> = { ...options.headers };
  if (options.requestId !== undefined) headers['x-request-id'] = options.requestId;
  return createContext({
    door: options.door ?? 'internal',
    header: recordReader(headers),
    ...(model !== undefined ? { model } : {}),
    ...(version !== undefined ? { version } : {}),
  });
}
