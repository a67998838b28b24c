/**
 * One error hierarchy for the whole server. Front doors map it once to their wire:
 * HTTP status, gRPC status code and the OIP error body `{"error": "..."}`.
 */

export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'UNAVAILABLE'
  | 'RESOURCE_EXHAUSTED'
  | 'DEADLINE_EXCEEDED'
  | 'CANCELLED'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'FAILED_PRECONDITION'
  | 'ALREADY_EXISTS'
  | 'PAYLOAD_TOO_LARGE'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INTERNAL';

/** Why a request failed, as counted by metrics (bounded set: safe as a label value). */
export type FailureReason =
  | 'invalid_input'
  | 'not_found'
  | 'rejected'
  | 'timeout'
  | 'cancelled'
  | 'runtime_error'
  | 'unavailable'
  | 'unauthorized'
  | 'internal';

export class InferdError extends Error {
  readonly code: ErrorCode;
  /** Seconds after which a retry may succeed (sent as `Retry-After`). */
  retryAfterSeconds?: number;
  /** Extra fields of the error body (a lost compare-and-set's `current`...); never secrets. */
  details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterSeconds?: number; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
    if (options?.details !== undefined) this.details = options.details;
  }

  get reason(): FailureReason {
    return REASONS[this.code];
  }
}

const REASONS: Record<ErrorCode, FailureReason> = {
  INVALID_ARGUMENT: 'invalid_input',
  PAYLOAD_TOO_LARGE: 'invalid_input',
  METHOD_NOT_ALLOWED: 'not_found',
  UNSUPPORTED_MEDIA_TYPE: 'invalid_input',
  NOT_FOUND: 'not_found',
  UNAVAILABLE: 'unavailable',
  RESOURCE_EXHAUSTED: 'rejected',
  DEADLINE_EXCEEDED: 'timeout',
  CANCELLED: 'cancelled',
  UNAUTHENTICATED: 'unauthorized',
  PERMISSION_DENIED: 'unauthorized',
  FAILED_PRECONDITION: 'invalid_input',
  ALREADY_EXISTS: 'invalid_input',
  INTERNAL: 'internal',
};

/** The request does not fit the protocol or the model's signature. */
export class InvalidInputError extends InferdError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

export class ModelNotFoundError extends InferdError {
  constructor(model: string, version?: string) {
    super('NOT_FOUND', version === undefined ? `model '${model}' is not found` : `model '${model}' version '${version}' is not found`);
  }
}

/** The model exists but cannot serve now (loading, draining, failed to load, server shutting down). */
export class UnavailableError extends InferdError {
  constructor(message: string, retryAfterSeconds?: number) {
    super('UNAVAILABLE', message, retryAfterSeconds === undefined ? undefined : { retryAfterSeconds });
  }
}

/** A queue or limit refused the request; retrying later may succeed. */
export class OverloadedError extends InferdError {
  constructor(message: string, retryAfterSeconds = 1) {
    super('RESOURCE_EXHAUSTED', message, { retryAfterSeconds });
  }
}

/**
 * A caller went over its rate or concurrency limit: HTTP 429 (not the 503 of an overloaded
 * server), gRPC RESOURCE_EXHAUSTED, with Retry-After.
 */
export class RateLimitedError extends InferdError {
  readonly httpStatus = 429;
  constructor(message: string, retryAfterSeconds: number) {
    super('RESOURCE_EXHAUSTED', message, { retryAfterSeconds });
  }
}

export class DeadlineExceededError extends InferdError {
  constructor(message = 'the request deadline passed before it was answered') {
    super('DEADLINE_EXCEEDED', message);
  }
}

export class CancelledError extends InferdError {
  constructor(message = 'the request was cancelled by its caller') {
    super('CANCELLED', message);
  }
}

/** The model runtime failed while running a request (not the caller's fault). */
export class RuntimeError extends InferdError {
  constructor(message: string, cause?: unknown) {
    super('INTERNAL', message, { cause });
  }
  override get reason(): FailureReason {
    return 'runtime_error';
  }
}

// ---- the one mapping from the error model to each wire ----

/** HTTP status per error code. A failed precondition is a conflict with the server's state. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 409,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  METHOD_NOT_ALLOWED: 405,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 503,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
  CANCELLED: 499,
  INTERNAL: 500,
};

/** gRPC status code per error code (numbers from grpc's status.proto). */
export const GRPC_STATUS: Record<ErrorCode, number> = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  PAYLOAD_TOO_LARGE: 8,
  METHOD_NOT_ALLOWED: 12,
  UNSUPPORTED_MEDIA_TYPE: 3,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

/** Longest error message a caller is sent (gRPC clients refuse large status metadata). */
export const MAX_ERROR_MESSAGE = 2048;

/** The message as sent to a caller: cut at MAX_ERROR_MESSAGE characters, saying so. */
export function boundedMessage(error: InferdError): string {
  const m = error.message;
  return m.length <= MAX_ERROR_MESSAGE ? m : `${m.slice(0, MAX_ERROR_MESSAGE - 40)}... (${m.length - MAX_ERROR_MESSAGE + 40} more characters)`;
}

/** The OIP error body: `{"error": "..."}` plus the error's details. */
export function errorBody(error: InferdError): Record<string, unknown> {
  return { error: boundedMessage(error), ...error.details };
}

/** The HTTP status of an error: its code's, unless the error carries its own (429). */
export function httpStatusOf(error: InferdError): number {
  return error instanceof RateLimitedError ? error.httpStatus : HTTP_STATUS[error.code];
}

/** Wraps anything thrown into an InferdError so that every door reports it the same way. */
export function toInferdError(error: unknown): InferdError {
  if (error instanceof InferdError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new InferdError('INTERNAL', message, { cause: error });
}
