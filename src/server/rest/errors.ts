/** Maps every error to one HTTP answer: a status and the OIP body `{"error": "..."}`. */
import type { FastifyError } from 'fastify';
import { httpStatusOf, InferdError, toInferdError } from '../../core/errors.js';

export interface HttpError {
  status: number;
  message: string;
  retryAfterSeconds?: number;
  error: InferdError;
}

export function toHttpError(error: unknown): HttpError {
  const fe = error as Partial<FastifyError>;
  if (!(error instanceof InferdError) && typeof fe.code === 'string' && fe.code.startsWith('FST_')) {
    const status = fe.statusCode ?? 500;
    let message = fe.message ?? 'bad request';
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') message = `the request body is larger than the limit of ${message.match(/\d+/)?.[0] ?? 'configured'} bytes`;
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 404 ? 'NOT_FOUND' : status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL';
    return { status, message, error: new InferdError(code, message) };
  }
  const e = toInferdError(error);
  const out: HttpError = { status: httpStatusOf(e), message: e.message, error: e };
  if (e.retryAfterSeconds !== undefined) out.retryAfterSeconds = e.retryAfterSeconds;
  return out;
}
