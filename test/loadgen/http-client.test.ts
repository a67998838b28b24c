import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHttpRequest, parseTarget, RawHttpTransport } from '../../src/loadgen/http-client.js';
import type { RequestOutcome } from '../../src/loadgen/types.js';

/** A TCP server that answers each request (ended by a blank line) with the next scripted reply, byte pieces apart. */
async function scripted(replies: (string | string[])[]): Promise<{ port: number; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  let next = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    let buf = '';
    s.on('data', async (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        const end = buf.indexOf('\r\n\r\n') + 4;
        const m = /content-length: (\d+)/i.exec(buf.slice(0, end));
        const total = end + (m ? Number(m[1]) : 0);
        if (buf.length < total) return;
        requests.push(buf.slice(0, total));
        buf = buf.slice(total);
        const reply = replies[next++ % replies.length]!;
        const pieces = Array.isArray(reply) ? reply : [reply];
        for (const p of pieces) {
          s.write(p, 'latin1');
          await new Promise((r) => setTimeout(r, 5));
        }
        if (pieces.join('').includes('Connection: close')) s.end();
      }
    });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function sendAll(t: RawHttpTransport, n: number): Promise<RequestOutcome[]> {
  return new Promise((resolve) => {
    const out: RequestOutcome[] = [];
    const one = (i: number): void =>
      t.send(i, (o) => {
        out.push(o);
        if (i + 1 < n) one(i + 1);
        else resolve(out);
      });
    one(0);
  });
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0)) await c();
});

describe('minimal HTTP client', () => {
  it('encodes the request line, host, length and body', () => {
    const t = parseTarget('http://127.0.0.1:8000/base/');
    const b = encodeHttpRequest(t, { method: 'POST', path: '/v2/x', headers: { 'Content-Type': 'application/json' }, body: Buffer.from('{}') });
    expect(b.toString()).toBe(
      'POST /base/v2/x HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUser-Agent: inferd-bench\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
    );
    expect(parseTarget('localhost:9000')).toEqual({ secure: false, host: 'localhost', port: 9000, basePath: '' });
  });

  it('reads content-length, chunked, split heads and 204 responses on one connection', async () => {
    const srv = await scripted([
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel', 'lo\r\n3;ext=1\r\nabc\r\n0\r\n', 'X-Trailer: 1\r\n\r\n'],
      ['HTTP/1.1 20', '0 OK\r\nContent-Le', 'ngth: 3\r\n', '\r\nab', 'c'],
      'HTTP/1.1 204 No Content\r\n\r\n',
      // Lower-case names among fields that look alike but do not matter (content-type, trailer...).
      'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntrailer: x\r\nx-a: 1\r\ncontent-length:  4 \r\nconnection: keep-alive\r\n\r\nabcd',
      'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n',
    ]);
    cleanup.push(srv.close);
    const target = parseTarget(`http://127.0.0.1:${srv.port}`);
    const t = new RawHttpTransport(target, [encodeHttpRequest(target, { method: 'GET', path: '/' })], { maxConnections: 1, timeoutMs: 5000 });
    cleanup.push(() => t.close());
    const out = await sendAll(t, 10);
    expect(out.every((o) => o.ok)).toBe(true);
    expect(srv.requests).toHaveLength(10);
    expect(t.connectionCount).toBe(1);
  });

  it('counts error statuses with the body text, and reconnects after Connection: close', async () => {
    const srv = await scripted([
      'HTTP/1.1 503 Service Unavailable\r\nContent-Length: 10\r\n\r\noverloaded',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
    ]);
    cleanup.push(srv.close);
    const target = parseTarget(`http://127.0.0.1:${srv.port}`);
    const t = new RawHttpTransport(target, [encodeHttpRequest(target, { method: 'POST', path: '/', body: Buffer.from('x') })], {
      maxConnections: 1,
      timeoutMs: 5000,
    });
    cleanup.push(() => t.close());
    const out = await sendAll(t, 6);
    expect(out.map((o) => (o.ok ? 'ok' : o.errorKey))).toEqual(['503', 'ok', 'ok', '503', 'ok', 'ok']);
    expect(out[0]!.errorMessage).toBe('overloaded');
  });

  it('reads a body delimited by connection close', async () => {
    const srv = await scripted(['HTTP/1.0 200 OK\r\n\r\nall of it\r\nConnection: close']);
    cleanup.push(srv.close);
    const target = parseTarget(`http://127.0.0.1:${srv.port}`);
    const t = new RawHttpTransport(target, [encodeHttpRequest(target, { method: 'GET', path: '/' })], { maxConnections: 1, timeoutMs: 5000 });
    cleanup.push(() => t.close());
    const out = await sendAll(t, 3);
    expect(out.every((o) => o.ok)).toBe(true);
  });

  it('reports refused connections and timeouts as errors', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const target = parseTarget(`http://127.0.0.1:${port}`);
    const t = new RawHttpTransport(target, [encodeHttpRequest(target, { method: 'GET', path: '/' })], { maxConnections: 1, timeoutMs: 5000 });
    const out = await sendAll(t, 2);
    expect(out.map((o) => o.errorKey)).toEqual(['connection', 'connection']);
    await t.close();

    const silent = net.createServer((s) => s.on('error', () => {}).resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => silent.close(() => r())));
    const target2 = parseTarget(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
    const t2 = new RawHttpTransport(target2, [encodeHttpRequest(target2, { method: 'GET', path: '/' })], { maxConnections: 1, timeoutMs: 100 });
    const out2 = await sendAll(t2, 1);
    expect(out2[0]!.errorKey).toBe('timeout');
    await t2.close();
  });

  it('queues requests beyond the connection cap', async () => {
    const srv = await scripted(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n']);
    cleanup.push(srv.close);
    const target = parseTarget(`http://127.0.0.1:${srv.port}`);
    const t = new RawHttpTransport(target, [encodeHttpRequest(target, { method: 'GET', path: '/' })], { maxConnections: 2, timeoutMs: 5000 });
    cleanup.push(() => t.close());
    const done = await new Promise<RequestOutcome[]>((resolve) => {
      const out: RequestOutcome[] = [];
      for (let i = 0; i < 10; i++) t.send(i, (o) => {
        out.push(o);
        if (out.length === 10) resolve(out);
      });
    });
    expect(done.every((o) => o.ok)).toBe(true);
    expect(t.connectionCount).toBeLessThanOrEqual(2);
  });
});
