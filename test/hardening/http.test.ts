/**
 * The HTTP edge: every refusal in the server's own format with a precise status, bodies
 * decoded as their Content-Encoding says, and a bound on requests in progress.
 */
import { gzipSync } from 'node:zlib';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../src/server/index.js';
import { BC_ROW } from '../models/support.js';
import { EXAMPLES } from '../support/paths.js';
import { makeRepository, postJson, startInProcess } from '../support/server.js';

const ROW = { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: BC_ROW }] };
let server: InferdServer;
let url: string;

beforeAll(async () => {
  const repo = await makeRepository({
    breast_cancer: { copyFrom: join(EXAMPLES, 'breast_cancer') },
    slow: {
      config: 'runtime: js\nmax_batch_size: 0\ninstances: 1\ninputs: [{ name: x, datatype: INT32, shape: [-1] }]\noutputs: [{ name: y, datatype: INT32, shape: [-1] }]\nwarmup: []\n',
      files: { '1/model.mjs': "export async function predict({ x }) { await new Promise((r) => setTimeout(r, 300)); return { y: x }; }" },
    },
  });
  ({ server, url } = await startInProcess(repo, { server: { body_limit_bytes: 65536, max_inflight_requests: 10 } }));
}, 120_000);

afterAll(async () => {
  await server?.shutdown(5000);
});

function raw(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the HTTP edge', () => {
  it('a wrong method on a known path is 405 with Allow', async () => {
    const r = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'PUT' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect(await r.json()).toEqual({ error: 'PUT is not allowed on /v2/models/breast_cancer/infer; use POST' });
    expect((await fetch(`${url}/v2/nothing-here`)).status).toBe(404);
  });

  it('413, 414 and 431 name the limit, in the server format, without echoing the request', async () => {
    const big = await postJson(`${url}/v2/models/breast_cancer/infer`, 'x'.repeat(70_000));
    expect(big.status).toBe(413);
    expect(big.body.error).toMatch(/larger than the limit of 65536 bytes \(server.body_limit_bytes\)/);
    const long = await fetch(`${url}/v2/models/${'a'.repeat(300)}`);
    expect(long.status).toBe(414);
    const longBody = await long.text();
    expect(longBody).not.toContain('aaaa');
    expect(JSON.parse(longBody)).toEqual({ error: 'a path segment of the URL is longer than 256 characters' });
    const headers = await raw('/health', { 'x-big': 'a'.repeat(20_000) });
    expect(headers.status).toBe(431);
    expect(JSON.parse(headers.body).error).toMatch(/request headers are larger than the limit of \d+ bytes/);
  });

  it('decodes gzip bodies, refuses unknown encodings with 415 and corrupt ones with 400', async () => {
    const gz = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: gzipSync(JSON.stringify(ROW)) });
    expect(gz.status).toBe(200);
    const zstd = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-encoding': 'zstd' }, body: 'x' });
    expect(zstd.status).toBe(415);
    const corrupt = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: 'not gzip at all' });
    expect(corrupt.status).toBe(400);
    // A compression bomb stops at the body limit, counted in decoded bytes.
    const bomb = await fetch(`${url}/v2/models/breast_cancer/infer`, { method: 'POST', headers: { 'content-encoding': 'gzip' }, body: gzipSync(Buffer.alloc(10_000_000)) });
    expect(bomb.status).toBe(413);
  });

  it('past server.max_inflight_requests, new requests are refused at once with 503 and Retry-After', async () => {
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${url}/v2/models/slow/infer`, { method: 'POST', body: JSON.stringify({ inputs: [{ name: 'x', datatype: 'INT32', shape: [1], data: [1] }] }) }).then(async (r) => ({
          status: r.status,
          retry: r.headers.get('retry-after'),
          ms: performance.now() - started,
        })),
      ),
    );
    const refused = answers.filter((a) => a.status === 503);
    expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(10);
    expect(refused.length).toBeGreaterThanOrEqual(30);
    expect(refused.every((a) => a.retry === '1')).toBe(true);
    // Refused at once, not after waiting their turn (ten served requests take 3 s).
    expect(Math.min(...refused.map((a) => a.ms))).toBeLessThan(1000);
    expect((await postJson(`${url}/v2/models/breast_cancer/infer`, ROW)).status).toBe(200);
  });
});
