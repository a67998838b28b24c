import { describe, expect, it } from 'vitest';
import { environmentOverrides, loadConfig } from '../../src/config/load.js';
import { PROJECT_VARIABLES } from '../../src/config/environment.js';
import { InvalidInputError } from '../../src/core/errors.js';
import { applyRequestParameters, callContext, correlationIdOf, createContext, headerDeadline, recordReader } from '../../src/pipeline/context.js';
import { composeInfer } from '../../src/pipeline/chain.js';
import type { Policy } from '../../src/pipeline/types.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const idOf = (headers: Record<string, string | string[]>) => correlationIdOf(recordReader(headers));

describe('correlation ids', () => {
  it('prefers X-Correlation-ID, then X-Request-ID, then the trace id, else a new UUID; remembers the key', () => {
    expect(idOf({ 'x-correlation-id': 'corr-1', 'x-request-id': 'req-1', traceparent: TRACEPARENT })).toEqual({ id: 'corr-1', key: 'x-correlation-id' });
    expect(idOf({ 'x-request-id': 'req-1', traceparent: TRACEPARENT })).toEqual({ id: 'req-1', key: 'x-request-id' });
    expect(idOf({ 'x-request-id': ['req-2', 'req-3'] }).id).toBe('req-2');
    expect(idOf({ traceparent: TRACEPARENT })).toEqual({ id: TRACE_ID, key: 'x-request-id' });
    const generated = idOf({}).id;
    expect(generated).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
    const next = idOf({}).id;
    expect(next).not.toBe(generated);
    // One process prefix, then a sequence number.
    expect(next.split('-')[0]).toBe(generated.split('-')[0]);
    expect(parseInt(next.split('-')[1]!, 16)).toBeGreaterThan(parseInt(generated.split('-')[1]!, 16));
  });

  it('generates ids with a different prefix in another process', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = "import('./src/pipeline/context.ts').then((m) => process.stdout.write(m.newRequestId()))";
    const other = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
    expect(other).toMatch(/^[0-9a-f]{16}-1$/);
    expect(other.split('-')[0]).not.toBe(idOf({}).id.split('-')[0]);
  });

  it('ignores values unfit for logs and headers, and invalid traceparents', () => {
    expect(idOf({ 'x-correlation-id': 'a b\nforged=1', 'x-request-id': 'req-ok' }).id).toBe('req-ok');
    expect(idOf({ 'x-request-id': 'x'.repeat(129), traceparent: TRACEPARENT }).id).toBe(TRACE_ID);
    expect(idOf({ traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` }).id).not.toBe('0'.repeat(32));
    expect(idOf({ traceparent: 'garbage' }).id).toMatch(/^[0-9a-f]{16}-[0-9a-f]+$/);
  });
});

describe('deadlines', () => {
  it('reads X-Request-Timeout (ms) and grpc-timeout, taking the earliest', () => {
    const now = 1_000_000;
    expect(headerDeadline(recordReader({ 'x-request-timeout': '250' }), now)).toBe(now + 250);
    expect(headerDeadline(recordReader({ 'grpc-timeout': '2S' }), now)).toBe(now + 2000);
    expect(headerDeadline(recordReader({ 'grpc-timeout': '100m', 'x-request-timeout': '500' }), now)).toBe(now + 100);
    expect(headerDeadline(recordReader({}), now)).toBeUndefined();
  });

  it('refuses malformed timeouts, naming the header', () => {
    expect(() => headerDeadline(recordReader({ 'x-request-timeout': '-5' }))).toThrow(/X-Request-Timeout must be a positive number/);
    expect(() => headerDeadline(recordReader({ 'x-request-timeout': 'soon' }))).toThrow(InvalidInputError);
    expect(() => headerDeadline(recordReader({ 'grpc-timeout': '5 seconds' }))).toThrow(/grpc-timeout must be/);
  });

  it('a transport deadline and a header deadline: the earliest wins', () => {
    const soon = Date.now() + 50;
    const ctx = createContext({ door: 'grpc.unary', header: recordReader({ 'x-request-timeout': '60000' }), deadline: soon });
    expect(ctx.deadline).toBe(soon);
    expect(ctx.protocol).toBe('grpc');
  });
});

describe('request parameters', () => {
  const ctx = () => callContext('m');
  it('applies priority and timeout (microseconds)', () => {
    const c = ctx();
    const before = Date.now();
    applyRequestParameters(c, { inputs: [], parameters: { priority: 2, timeout: 5_000_000 } });
    expect(c.priority).toBe(2);
    expect(c.deadline! - before).toBeGreaterThanOrEqual(4990);
    expect(c.deadline! - before).toBeLessThanOrEqual(5100);
  });

  it.each([
    [{ timeout: -5 }, /parameter 'timeout' must be a positive number of microseconds, got number -5/],
    [{ timeout: 'x' }, /parameter 'timeout' .* got the string 'x'/],
    [{ timeout: true }, /parameter 'timeout' .* got boolean true/],
    [{ priority: true }, /parameter 'priority' must be a non-negative integer, got boolean true/],
    [{ priority: 1.5 }, /parameter 'priority' must be a non-negative integer/],
  ])('refuses %j', (parameters, message) => {
    expect(() => applyRequestParameters(ctx(), { inputs: [], parameters })).toThrow(message);
  });
});

describe('chain composition', () => {
  it('runs policies in order around the terminal, and a sync throw becomes a rejection', async () => {
    const order: string[] = [];
    const p = (name: string): Policy => ({
      name,
      infer: (c, r, next) => {
        order.push(name);
        return next(c, r);
      },
    });
    const thrower: Policy = {
      name: 'thrower',
      infer: () => {
        throw new InvalidInputError('no');
      },
    };
    const run = composeInfer([p('a'), { name: 'control-only' }, p('b')], async () => {
      order.push('end');
      return { model_name: 'm', model_version: '1', outputs: [] };
    });
    await run(callContext('m'), { inputs: [] });
    expect(order).toEqual(['a', 'b', 'end']);
    await expect(composeInfer([thrower], async () => ({ model_name: '', model_version: '', outputs: [] }))(callContext('m'), { inputs: [] })).rejects.toThrow('no');
  });
});

describe("the project's own environment variables", () => {
  it('are never read as configuration keys', () => {
    const env = { INFERD_USER: 'alice', INFERD_PROTO_DIR: '/x', INFERD_HOME: '/h', INFERD_DEBUG: '1', INFERD_REGISTRY: 'sqlite:/tmp/r.db', INFERD_SERVER__HTTP_PORT: '9001' };
    expect(environmentOverrides(env)).toEqual({ server: { http_port: 9001 } });
    expect(loadConfig({ env }).server.http_port).toBe(9001);
    for (const name of Object.keys(PROJECT_VARIABLES)) expect(environmentOverrides({ [name]: 'v' })).toEqual({});
  });

  it('an unknown INFERD_ variable is still named as an error', () => {
    expect(() => loadConfig({ env: { INFERD_NO_SUCH_KEY: '1' } })).toThrow(/INFERD_NO_SUCH_KEY/);
  });
});
