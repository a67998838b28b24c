/** The process logger: JSON lines by default, pretty in development, secrets redacted. */
import { pino, type Logger } from 'pino';
import type { ServerConfig } from '../config/schema.js';

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-api-key"]',
  '*.token',
  '*.password',
  '*.apiKey',
];

export function createServerLogger(config: Pick<ServerConfig, 'logging'>): Logger {
  return pino({
    name: 'inferd',
    level: config.logging.level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    ...(config.logging.pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  });
}
