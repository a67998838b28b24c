/**
 * What a Kafka record means to inferd, both ways. A request record's value is an OIP inference
 * request: JSON, or the binary tensor extension when the `inference-header-content-length`
 * header is present (decoded by the same codec as the REST door). Headers name the target and
 * the correlation id; the key may name the model instead (`model` or `model:version`).
 */
import { InferdError, InvalidInputError, toInferdError } from '../../core/errors.js';
import type { InferenceRequest, InferenceResponse } from '../../core/types.js';
import { INFERENCE_HEADER_CONTENT_LENGTH, BINARY_CONTENT_TYPE } from '../../codecs/binary.js';
import { binaryCodec } from '../../codecs/binary-request.js';
import { encodeInferResponse } from '../../codecs/json.js';

export const HEADER = {
  model: 'inferd-model',
  version: 'inferd-version',
  correlationId: 'x-correlation-id',
  requestId: 'x-request-id',
  /** Absolute deadline, Unix epoch milliseconds. */
  deadline: 'inferd-deadline',
  /** Relative deadline, milliseconds after the record's timestamp. */
  timeoutMs: 'inferd-timeout-ms',
  contentType: 'content-type',
  headerLength: INFERENCE_HEADER_CONTENT_LENGTH,
  sourceTopic: 'inferd-source-topic',
  sourcePartition: 'inferd-source-partition',
  sourceOffset: 'inferd-source-offset',
  errorReason: 'inferd-error-reason',
  errorClass: 'inferd-error-class',
  errorCode: 'inferd-error-code',
} as const;

/** A consumed record as the door reads it (keys and header values as the broker gave them). */
export interface InboundRecord {
  topic: string;
  partition: number;
  offset: bigint;
  timestamp: bigint;
  key: Buffer | undefined;
  value: Buffer | undefined;
  headers: Map<Buffer | string, Buffer | string | undefined>;
}

export interface OutboundRecord {
  topic: string;
  key?: Buffer;
  value: Buffer;
  headers: Record<string, Buffer>;
}

/** A request record, decoded. */
export interface DecodedRequest {
  model: string;
  version?: string;
  correlationId: string;
  deadline?: number;
  request: InferenceRequest;
  headers: Map<string, string>;
}

/** Lower-case header names to UTF-8 values (the last value of a repeated header wins). */
export function readHeaders(record: InboundRecord): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of record.headers) {
    if (v === undefined) continue;
    out.set(String(k).toLowerCase(), Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
  }
  return out;
}

/** The correlation id of a record: its header, else one derived from where it sits (stable on redelivery). */
export function correlationIdOf(record: InboundRecord, headers: Map<string, string>): string {
  return headers.get(HEADER.correlationId) ?? headers.get(HEADER.requestId) ?? `${record.topic}-${record.partition}-${record.offset}`;
}

function parseDeadline(record: InboundRecord, headers: Map<string, string>): number | undefined {
  const absolute = headers.get(HEADER.deadline);
  if (absolute !== undefined) {
    const n = Number(absolute);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidInputError(`header '${HEADER.deadline}' must be Unix epoch milliseconds, got '${absolute}'`);
    return n;
  }
  const relative = headers.get(HEADER.timeoutMs);
  if (relative !== undefined) {
    const n = Number(relative);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidInputError(`header '${HEADER.timeoutMs}' must be a positive number of milliseconds, got '${relative}'`);
    return Number(record.timestamp) + n;
  }
  return undefined;
}

export function decodeRequestRecord(record: InboundRecord, defaultModel: string | undefined): DecodedRequest {
  const headers = readHeaders(record);
  const correlationId = correlationIdOf(record, headers);
  let model = headers.get(HEADER.model);
  let version = headers.get(HEADER.version);
  if (model === undefined && record.key !== undefined && record.key.byteLength > 0) {
    const key = record.key.toString('utf8');
    const colon = key.indexOf(':');
    model = colon < 0 ? key : key.slice(0, colon);
    if (colon >= 0 && version === undefined) version = key.slice(colon + 1);
  }
  model ??= defaultModel;
  if (model === undefined || model === '') {
    throw new InvalidInputError(`the record names no model: set header '${HEADER.model}' or the key to the model name`);
  }
  if (version === '') version = undefined;
  if (record.value === undefined || record.value.byteLength === 0) throw new InvalidInputError('the record has no value (an inference request was expected)');
  const headerLength = headers.get(HEADER.headerLength);
  let length = record.value.byteLength;
  if (headerLength !== undefined) {
    if (!/^\d+$/.test(headerLength.trim())) throw new InvalidInputError(`header '${HEADER.headerLength}' must be a non-negative integer, got '${headerLength}'`);
    length = Number(headerLength);
  }
  const request = binaryCodec.decode(record.value, length);
  const deadline = parseDeadline(record, headers);
  return { model, ...(version !== undefined ? { version } : {}), correlationId, ...(deadline !== undefined ? { deadline } : {}), request, headers };
}

/** The answer to a request record: same key (so the same partitioning), OIP response as value. */
export function responseRecord(topic: string, record: InboundRecord, decoded: DecodedRequest, response: InferenceResponse, extra: Record<string, string> = {}): OutboundRecord {
  const headers: Record<string, Buffer> = {
    // Headers policies added to the answer (variant, limits...), as REST and gRPC send them.
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k.toLowerCase(), Buffer.from(v)])),
    [HEADER.correlationId]: Buffer.from(decoded.correlationId),
    [HEADER.model]: Buffer.from(response.model_name),
    [HEADER.version]: Buffer.from(response.model_version),
    ...sourceHeaders(record),
  };
  const binary = binaryCodec.encode(response, decoded.request);
  let value: Buffer;
  if (binary) {
    value = binary.body;
    headers[HEADER.headerLength] = Buffer.from(String(binary.headerLength));
    headers[HEADER.contentType] = Buffer.from(BINARY_CONTENT_TYPE);
  } else {
    value = Buffer.from(encodeInferResponse(response));
    headers[HEADER.contentType] = Buffer.from('application/json');
  }
  return { topic, ...(record.key !== undefined ? { key: record.key } : {}), value, headers };
}

/** A record that could not be answered: its own key, value and headers, plus why and where from. */
export function deadLetterRecord(topic: string, record: InboundRecord, error: unknown): OutboundRecord {
  const inferd = toInferdError(error);
  const headers: Record<string, Buffer> = {};
  for (const [k, v] of record.headers) {
    if (v !== undefined) headers[String(k)] = Buffer.isBuffer(v) ? v : Buffer.from(String(v));
  }
  const given = readHeaders(record);
  Object.assign(headers, {
    [HEADER.correlationId]: Buffer.from(correlationIdOf(record, given)),
    [HEADER.errorReason]: Buffer.from(inferd.message.slice(0, 2000)),
    [HEADER.errorClass]: Buffer.from(error instanceof InferdError ? error.name : error instanceof Error ? error.constructor.name : 'Error'),
    [HEADER.errorCode]: Buffer.from(inferd.code),
    ...sourceHeaders(record),
  });
  return { topic, ...(record.key !== undefined ? { key: record.key } : {}), value: record.value ?? Buffer.alloc(0), headers };
}

function sourceHeaders(record: InboundRecord): Record<string, Buffer> {
  return {
    [HEADER.sourceTopic]: Buffer.from(record.topic),
    [HEADER.sourcePartition]: Buffer.from(String(record.partition)),
    [HEADER.sourceOffset]: Buffer.from(String(record.offset)),
  };
}

/** Errors worth retrying later (the transaction is aborted and the records redelivered), not dead letters. */
export function isTransient(error: unknown): boolean {
  return error instanceof InferdError && (error.code === 'UNAVAILABLE' || error.code === 'RESOURCE_EXHAUSTED');
}
