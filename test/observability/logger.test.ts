import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { REDACTED, createLogger } from '../../src/observability/logger.js';

/** A destination that keeps what was written. */
function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('createLogger', () => {
  test('writes JSON lines with the level name, ISO time and base fields', () => {
    const out = capture();
    const logger = createLogger({ level: 'debug', base: { service: 'inferd' }, destination: out.stream });
    logger.child({ correlationId: 'corr-1' }).debug({ model: 'digits' }, 'inference done');
    logger.trace('not at this level');
    const [line, ...rest] = jsonLines(out.text());
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: 'debug', service: 'inferd', correlationId: 'corr-1', model: 'digits', msg: 'inference done', pid: process.pid });
    expect(new Date(line!['time'] as string).toISOString()).toBe(line!['time']);
  });

  test('redacts credentials in request headers, cookies and nested secrets', () => {
    const out = capture();
    const logger = createLogger({ destination: out.stream });
    logger.info(
      {
        req: {
          method: 'POST',
          url: '/v2/models/digits/infer',
          headers: { authorization: 'Bearer eyJhbGciOi.secret', 'x-api-key': 'key-123', cookie: 'session=abc', 'content-type': 'application/json' },
        },
        res: { statusCode: 200, headers: { 'set-cookie': 'session=def' } },
        registry: { url: 'postgres://db', password: 'hunter2' },
        auth: { token: 'tok-456', apiKey: 'api-789' },
        token: 'top-level-token',
      },
      'request',
    );
    const text = out.text();
    for (const secret of ['eyJhbGciOi', 'key-123', 'session=abc', 'session=def', 'hunter2', 'tok-456', 'api-789', 'top-level-token']) expect(text).not.toContain(secret);
    const [line] = jsonLines(text);
    const req = line!['req'] as { headers: Record<string, string>; url: string };
    expect(req.headers['authorization']).toBe(REDACTED);
    expect(req.headers['x-api-key']).toBe(REDACTED);
    expect(req.headers['cookie']).toBe(REDACTED);
    // What is not a credential stays readable.
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.url).toBe('/v2/models/digits/infer');
    expect((line!['registry'] as Record<string, string>)['url']).toBe('postgres://db');
  });

  test('pretty output is human-readable, still redacted', () => {
    const out = capture();
    const logger = createLogger({ pretty: true, destination: out.stream });
    logger.warn({ headers: { authorization: 'Bearer secret-token' } }, 'model slow to load');
    const text = out.text();
    expect(text).toContain('WARN');
    expect(text).toContain('model slow to load');
    expect(text).toContain(REDACTED);
    expect(text).not.toContain('secret-token');
    expect(() => JSON.parse(text)).toThrow();
  });

  test('rejects unknown levels', () => {
    expect(() => createLogger({ level: 'verbose' as never })).toThrow(/unknown log level 'verbose'/);
  });
});
