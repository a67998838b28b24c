// request.log is built on first use: a request that never logs costs no child logger, and one
// that does writes the same line, with the request id, that a pino child would.
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DeferredChildLogger } from '../../../src/server/rest/request-logger.js';

function capture(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('deferred request logger', () => {
  it('builds no child until a line is written, then writes it with the bindings', () => {
    const { logger, lines } = capture();
    let children = 0;
    const counting = Object.create(logger, { child: { value: (b: pino.Bindings, o?: pino.ChildLoggerOptions) => (children++, logger.child(b, o)) } }) as pino.Logger;
    const log = new DeferredChildLogger(counting, { reqId: 'r-1' }, {});
    expect(log.level).toBe('info');
    log.debug('below the level');
    expect(children).toBe(1); // a call builds the child; pino then drops the line
    expect(lines).toEqual([]);
    log.warn({ detail: 2 }, 'something happened');
    log.info('again');
    expect(children).toBe(1);
    expect(lines.map((l) => [l.reqId, l.msg, l.detail])).toEqual([
      ['r-1', 'something happened', 2],
      ['r-1', 'again', undefined],
    ]);
    const nested = log.child({ part: 'x' });
    nested.error('inner');
    expect(lines.at(-1)).toMatchObject({ reqId: 'r-1', part: 'x', msg: 'inner', level: 50 });
  });

  it('keeps a per-route level', () => {
    const { logger, lines } = capture();
    const log = new DeferredChildLogger(logger, { reqId: 'r-2' }, { level: 'warn' });
    expect(log.level).toBe('warn');
    log.info('dropped');
    log.warn('kept');
    expect(lines.map((l) => l.msg)).toEqual(['kept']);
  });

  it('serves as request.log in Fastify, with the request id', async () => {
    const { logger, lines } = capture();
    const app = Fastify({ loggerInstance: logger, disableRequestLogging: true, childLoggerFactory: (parent, bindings, options) => new DeferredChildLogger(parent, bindings, options) });
    app.get('/quiet', async () => 'ok');
    app.get('/loud', async (request) => {
      request.log.warn({ step: 'handler' }, 'from the route');
      return 'ok';
    });
    try {
      expect((await app.inject({ url: '/quiet', headers: { 'request-id': 'q' } })).statusCode).toBe(200);
      const loud = await app.inject('/loud');
      expect(loud.statusCode).toBe(200);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ msg: 'from the route', step: 'handler' });
      expect(typeof lines[0]!.reqId).toBe('string');
    } finally {
      await app.close();
    }
  });
});
