/**
 * Structured logs with pino: JSON lines by default, human-readable with pino-pretty, and
 * credentials redacted wherever the usual request and config shapes carry them.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Level, type Logger } from 'pino';

export type LogLevel = Level | 'silent';
export type { Logger };

export interface LoggerOptions {
  level?: LogLevel;
  /** Human-readable output for a terminal; needs pino-pretty, else JSON with a warning. */
  pretty?: boolean;
  /** Added to every line (service name, instance...). */
  base?: Record<string, string | number>;
  /** Where lines go; standard output by default. */
  destination?: DestinationStream;
}

export const REDACTED = '[redacted]';

/**
 * Paths whose values never reach a log line. Headers appear under req/res (Fastify's request
 * logs) or as a bare `headers` object; `*.x` covers one level of nesting, so the top-level key
 * is listed too.
 */
export const REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers["x-api-key"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'token',
  'password',
  'apiKey',
  '*.token',
  '*.password',
  '*.apiKey',
];

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? 'info';
  if (!LOG_LEVELS.includes(level)) throw new Error(`unknown log level '${String(level)}' (known: ${LOG_LEVELS.join(', ')})`);
  const settings = {
    level,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    base: { pid: process.pid, hostname: hostname(), ...options.base },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      // "level":"info" reads better in log stores than pino's numeric 30.
      level: (label: string) => ({ level: label }),
    },
  };
  if (options.pretty === true) {
    const pretty = loadPretty();
    if (pretty !== undefined) {
      const stream = pretty({
        destination: options.destination ?? 1,
        colorize: options.destination === undefined && process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname',
        sync: true,
      });
      return pino(settings, stream);
    }
    const logger = pino(settings, options.destination ?? pino.destination(1));
    logger.warn('pretty logs need the pino-pretty package, which is not installed: logging JSON');
    return logger;
  }
  return pino(settings, options.destination ?? pino.destination(1));
}

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

// pino-pretty is a development dependency: production installs may not have it.
function loadPretty(): PrettyFactory | undefined {
  try {
    return createRequire(import.meta.url)('pino-pretty') as PrettyFactory;
  } catch {
    return undefined;
  }
}

/** The server's logger, from the `logging` section of its configuration. */
export function createServerLogger(config: { logging: { level: LogLevel; pretty: boolean } }): Logger {
  return createLogger({ level: config.logging.level, pretty: config.logging.pretty, base: { name: 'inferd' } });
}
