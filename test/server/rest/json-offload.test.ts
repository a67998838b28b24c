// Large JSON bodies are decoded in a decoder thread (server.json_offload_bytes), while they arrive
// when their length is known: the tensors and every refusal are the same as when the event loop
// decodes them, wherever the body's pieces end, and the server keeps serving.
import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferdServer } from '../../../src/server/index.js';
import { makeRepository, postJson, startInProcess } from '../../support/server.js';

const ECHO_CONFIG = `runtime: js
max_batch_size: 0
inputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: ids, datatype: INT64, shape: [-1] }
outputs:
  - { name: x, datatype: FP32, shape: [-1, -1] }
  - { name: ids, datatype: INT64, shape: [-1] }
warmup: []
`;
// Returns every input unchanged: what comes back is exactly what the server decoded.
const ECHO_MODEL = `export function predict(inputs) { return Object.values(inputs); }`;

let offloaded: { server: InferdServer; url: string };
let inPlace: { server: InferdServer; url: string };
/** Offloaded once the body is in (the default), not while it arrives. */
let buffered: { server: InferdServer; url: string };

beforeAll(async () => {
  const repo = await makeRepository({ echo: { config: ECHO_CONFIG, files: { '1/model.mjs': ECHO_MODEL } } });
  // Every JSON body goes to the decoder thread on one server, none on the other.
  offloaded = await startInProcess(repo, { server: { json_offload_bytes: 1, json_decode_arriving: true, body_limit_bytes: 4 * 1024 * 1024 } });
  buffered = await startInProcess(repo, { server: { json_offload_bytes: 1, body_limit_bytes: 4 * 1024 * 1024 } });
  inPlace = await startInProcess(repo, { server: { json_offload_bytes: 0, body_limit_bytes: 4 * 1024 * 1024 } });
});

afterAll(async () => {
  await offloaded?.server.shutdown(5000);
  await inPlace?.server.shutdown(5000);
  await buffered?.server.shutdown(5000);
});

const infer = (base: string, body: unknown) => postJson(`${base}/v2/models/echo/infer`, body);

function largeRequest(rows: number, nested: boolean) {
  const values = Array.from({ length: rows * 1000 }, (_, i) => Math.fround(Math.sin(i) * 3));
  const data = nested ? Array.from({ length: rows }, (_, r) => values.slice(r * 1000, (r + 1) * 1000)) : values;
  return {
    id: 'big',
    inputs: [
      { name: 'x', datatype: 'FP32', shape: [rows, 1000], data },
      { name: 'ids', datatype: 'INT64', shape: [3], data: ['9223372036854775807', 1, -5] },
    ],
  };
}

describe('JSON bodies decoded off the event loop', () => {
  it.each([false, true])('decodes a large request exactly (nested: %s)', async (nested) => {
    const request = largeRequest(100, nested);
    const [a, b, c] = await Promise.all([infer(offloaded.url, request), infer(inPlace.url, request), infer(buffered.url, request)]);
    expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
    expect(a.body).toEqual(b.body);
    expect(c.body).toEqual(b.body);
    const flat = nested ? (request.inputs[0]!.data as number[][]).flat() : request.inputs[0]!.data;
    expect(a.body.outputs[0].data).toEqual(flat);
    expect(a.body.id).toBe('big');
  });

  it('answers many concurrent large requests', async () => {
    const request = largeRequest(20, false);
    const answers = await Promise.all(Array.from({ length: 12 }, () => infer(offloaded.url, request)));
    for (const r of answers) expect(r.status).toBe(200);
  });

  const refusals: Array<[string, unknown]> = [
    ['malformed JSON', '{"inputs": [ {'],
    ['a count that does not match the shape', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3] }] }],
    ['ragged nested data', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], data: [[1, 2], [3]] }] }],
    ['a value beyond FP32', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [3.5e38] }] }],
    ['a string in FP32', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: ['x'] }] }],
    ['an INT64 beyond its range', '{"inputs":[{"name":"ids","datatype":"INT64","shape":[1],"data":[9223372036854775808]}]}'],
    ['an unknown datatype', { inputs: [{ name: 'x', datatype: 'FLOAT', shape: [1, 1], data: [1] }] }],
    ['no inputs', { inputs: [] }],
  ];

  it.each(refusals)('refuses %s with the same status and message', async (_name, body) => {
    const [a, b, c] = await Promise.all([infer(offloaded.url, body), infer(inPlace.url, body), infer(buffered.url, body)]);
    expect(a.status).toBe(400);
    expect(a.status).toBe(b.status);
    expect(a.body.error).toBe(b.body.error);
    expect(c.body.error).toBe(b.body.error);
    const after = await infer(offloaded.url, largeRequest(1, false));
    expect(after.status).toBe(200);
  });

  it('keeps the body limit', async () => {
    const r = await infer(offloaded.url, largeRequest(500, false));
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/larger than the limit/);
  });
});

/** Sends a POST over a raw socket, the body in pieces with pauses between them; resolves with the status and body. */
function sendInPieces(base: string, body: Buffer, cuts: number[], pauseMs: number, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const url = new URL(`${base}/v2/models/echo/infer`);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, async () => {
      const head = { 'content-type': 'application/json', 'content-length': String(body.length), connection: 'close', ...headers };
      socket.write(`POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\n${Object.entries(head).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      let at = 0;
      for (const end of [...cuts, body.length]) {
        if (socket.destroyed) return;
        socket.write(body.subarray(at, end));
        at = end;
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    });
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    // A server that answers before the body is in (413) closes the connection under the writes.
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' || error.code === 'ECONNRESET' ? undefined : reject(error)));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
      const payload = text.slice(text.indexOf('\r\n\r\n') + 4);
      resolve({ status, body: JSON.parse(payload) });
    });
  });
}

describe('JSON bodies decoded while they arrive', () => {
  const request = largeRequest(100, false);
  const text = Buffer.from(JSON.stringify(request));
  // Inside a number of the data, inside the header, and at the very end.
  const cuts = [5, text.indexOf('.', 200_000) + 3, text.indexOf(',', 500_000) - 1, text.length - 2];

  it('answers a body that comes in pieces cut inside numbers exactly as one read whole', async () => {
    const [a, b] = await Promise.all([sendInPieces(offloaded.url, text, cuts, 5), infer(inPlace.url, request)]);
    expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
    expect(a.body).toEqual(b.body);
  });

  it('answers a body whose client pauses longer than the decoder waits', async () => {
    const a = await sendInPieces(offloaded.url, text, [text.length >> 1], 300);
    expect(a.status).toBe(200);
    expect(a.body.outputs[0].data).toEqual(request.inputs[0]!.data);
  });

  it('refuses a body malformed in the middle of its data with the message of the in-place decoder', async () => {
    const at = text.indexOf(',', 300_000);
    const broken = Buffer.concat([text.subarray(0, at), Buffer.from(',oops'), text.subarray(at)]);
    const [a, b] = await Promise.all([sendInPieces(offloaded.url, broken, [at - 2, at + 3], 5), postRaw(inPlace.url, broken)]);
    expect(a.status).toBe(400);
    expect(a.body.error).toMatch(/not valid JSON/);
    expect(a.body.error).toBe(b.body.error);
  });

  it('keeps serving after a client leaves in the middle of its body', async () => {
    const url = new URL(`${offloaded.url}/v2/models/echo/infer`);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write(`POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\ncontent-type: application/json\r\ncontent-length: ${text.length}\r\n\r\n`);
        socket.write(text.subarray(0, 100_000), () => setTimeout(() => socket.destroy(), 20));
      });
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });
    const after = await infer(offloaded.url, request);
    expect(after.status).toBe(200);
    expect(after.body.outputs[0].data).toEqual(request.inputs[0]!.data);
  });

  it('decodes chunked and compressed large bodies once they are in', async () => {
    const zipped = gzipSync(text);
    const compressed = await fetch(`${offloaded.url}/v2/models/echo/infer`, { method: 'POST', body: new Uint8Array(zipped), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    expect(compressed.status).toBe(200);
    expect(((await compressed.json()) as any).outputs[0].data).toEqual(request.inputs[0]!.data);
    // No Content-Length: the length is not known in advance.
    const chunked = await fetch(`${offloaded.url}/v2/models/echo/infer`, {
      method: 'POST',
      body: Readable.toWeb(Readable.from([text.subarray(0, 70_000), text.subarray(70_000)])) as ReadableStream,
      headers: { 'content-type': 'application/json' },
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(((await chunked.json()) as any).outputs[0].data).toEqual(request.inputs[0]!.data);
  });

  it('refuses a body whose Content-Length is over the limit before reading it', async () => {
    const big = largeRequest(500, false);
    const r = await sendInPieces(offloaded.url, Buffer.from(JSON.stringify(big)), [1000], 50);
    expect(r.status).toBe(413);
    expect(r.body.error).toMatch(/larger than the limit of 4194304 bytes/);
  });
});

async function postRaw(base: string, body: Buffer): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/v2/models/echo/infer`, { method: 'POST', body: new Uint8Array(body), headers: { 'content-type': 'application/json' } });
  return { status: r.status, body: await r.json() };
}
