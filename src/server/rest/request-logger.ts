/**
 * The logger Fastify hands each request (`request.log`). A pino child logger costs a
 * serialisation of its bindings and a few objects on every request, yet the pipeline writes the
 * access line itself and `request.log` is used only when something goes wrong; so the child is
 * built the first time the request logs, with the same bindings (the request id) as before.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bindings, ChildLoggerOptions, LevelWithSilentOrString, LogFn } from 'pino';

export class DeferredChildLogger implements FastifyBaseLogger {
  private built: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly options: ChildLoggerOptions,
  ) {}

  private get logger(): FastifyBaseLogger {
    return (this.built ??= this.parent.child(this.bindings, this.options));
  }

  get level(): LevelWithSilentOrString {
    return this.built?.level ?? this.options.level ?? this.parent.level;
  }

  set level(level: LevelWithSilentOrString) {
    this.logger.level = level;
  }

  // The level methods live on the prototype (below): nothing is built per request.
  declare readonly fatal: LogFn;
  declare readonly error: LogFn;
  declare readonly warn: LogFn;
  declare readonly info: LogFn;
  declare readonly debug: LogFn;
  declare readonly trace: LogFn;
  declare readonly silent: LogFn;

  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options);
  }
}

for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const) {
  Object.defineProperty(DeferredChildLogger.prototype, level, {
    value: function (this: { logger: FastifyBaseLogger }, ...args: unknown[]): void {
      (this.logger[level] as (...a: unknown[]) => void)(...args);
    },
  });
}
