/**
 * A minimal HTTP/1.1 client for load generation.
 *
 * Each request is a fully pre-encoded byte string (request line, headers and body) written to a
 * kept-alive socket in one call; a response is read just far enough to know its status and where
 * it ends (Content-Length, chunked, or connection close). There is no pipelining: one request
 * per connection at a time. On two shared cores this costs about a third of the CPU per request
 * of node:http or undici, which leaves the server under test the CPU it would have in production.
 */
import net from 'node:net';
import tls from 'node:tls';
import http from 'node:http';
import https from 'node:https';
import type { OutcomeCallback, RequestOutcome, Transport } from './types.js';

export interface HttpTarget {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** Path prefix from the base URL, without a trailing slash ('' for none). */
  readonly basePath: string;
}

export function parseTarget(url: string): HttpTarget {
  const withScheme = /^[a-z]+:\/\//i.test(url) ? url : `http://${url}`;
  const u = new URL(withScheme);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported URL scheme ${u.protocol}`);
  const secure = u.protocol === 'https:';
  return {
    secure,
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : secure ? 443 : 80,
    basePath: u.pathname.replace(/\/+$/, ''),
  };
}

function hostHeader(t: HttpTarget): string {
  const h = t.host.includes(':') ? `[${t.host}]` : t.host;
  return (t.secure && t.port === 443) || (!t.secure && t.port === 80) ? h : `${h}:${t.port}`;
}

export interface HttpRequestSpec {
  readonly method: string;
  /** Path below the target's base path, starting with '/'. */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

/** Request line, headers and body in one buffer, ready for `socket.write`. */
export function encodeHttpRequest(target: HttpTarget, req: HttpRequestSpec): Buffer {
  const body = req.body ?? Buffer.alloc(0);
  let head = `${req.method} ${target.basePath}${req.path} HTTP/1.1\r\nHost: ${hostHeader(target)}\r\nUser-Agent: inferd-bench\r\n`;
  for (const [k, v] of Object.entries(req.headers ?? {})) head += `${k}: ${v}\r\n`;
  if (body.length > 0 || req.method === 'POST' || req.method === 'PUT') head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const ERROR_TEXT = 300;

const enum Phase {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  Trailer,
  UntilClose,
}

const OK: RequestOutcome = { ok: true };

/** One kept-alive connection carrying one request at a time. */
class Connection {
  readonly socket: net.Socket;
  alive = true;
  private done: OutcomeCallback | null = null;
  private phase = Phase.Head;
  private head: Buffer | null = null;
  private remaining = 0;
  private line = '';
  private status = 0;
  private keepAlive = true;
  private errorText: string | null = null;

  constructor(
    target: HttpTarget,
    timeoutMs: number,
    private readonly onFree: (c: Connection) => void,
    private readonly onDead: (c: Connection) => void,
  ) {
    const socket = target.secure
      ? tls.connect({ host: target.host, port: target.port, servername: net.isIP(target.host) ? undefined : target.host })
      : net.connect({ host: target.host, port: target.port });
    socket.setNoDelay(true);
    if (timeoutMs > 0) socket.setTimeout(timeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('timeout', () => this.fail('timeout', `no response within ${timeoutMs} ms`));
    socket.on('error', (e: Error) => this.fail('connection', e.message));
    socket.on('close', () => {
      if (this.phase === Phase.UntilClose && this.done) this.complete();
      this.fail('connection', 'connection closed by the server');
    });
    this.socket = socket;
  }

  get busy(): boolean {
    return this.done !== null;
  }

  send(bytes: Buffer, done: OutcomeCallback): void {
    this.done = done;
    this.phase = Phase.Head;
    this.socket.write(bytes);
  }

  destroy(): void {
    this.alive = false;
    this.socket.destroy();
  }

  private fail(key: string, message: string): void {
    const wasAlive = this.alive;
    this.alive = false;
    this.socket.destroy();
    const done = this.done;
    this.done = null;
    if (wasAlive) this.onDead(this);
    if (done) done({ ok: false, errorKey: key, errorMessage: message });
  }

  private complete(): void {
    const done = this.done!;
    this.done = null;
    const outcome: RequestOutcome =
      this.status >= 200 && this.status < 300
        ? OK
        : { ok: false, errorKey: String(this.status), errorMessage: this.errorText ?? `HTTP ${this.status}` };
    this.errorText = null;
    this.phase = Phase.Head;
    if (!this.keepAlive) {
      this.alive = false;
      this.socket.destroy();
      this.onDead(this);
    } else {
      this.onFree(this);
    }
    done(outcome);
  }

  private parseHead(text: string): void {
    this.status = Number(text.slice(9, 12));
    const http10 = text.startsWith('HTTP/1.0');
    let length = -1;
    let chunked = false;
    let keepAlive = !http10;
    // Only three fields matter here. A line is looked at further only when its first letter
    // could start one of them, so the answer's other fields cost the client almost nothing.
    let start = text.indexOf('\r\n') + 2;
    while (start > 1 && start < text.length) {
      let end = text.indexOf('\r\n', start);
      if (end < 0) end = text.length;
      const first = text.charCodeAt(start) | 0x20;
      if (first === 0x63 /* c */ || first === 0x74 /* t */) {
        const colon = text.indexOf(':', start);
        if (colon > start && colon < end) {
          const name = text.slice(start, colon).trim().toLowerCase();
          if (name === 'content-length') length = Number(text.slice(colon + 1, end).trim());
          else if (name === 'transfer-encoding') chunked = /chunked/i.test(text.slice(colon + 1, end));
          else if (name === 'connection') {
            const v = text.slice(colon + 1, end).trim().toLowerCase();
            if (v === 'close') keepAlive = false;
            else if (v === 'keep-alive') keepAlive = true;
          }
        }
      }
      start = end + 2;
    }
    this.keepAlive = keepAlive;
    if (this.status >= 400) this.errorText = '';
    if (this.status >= 100 && this.status < 200) {
      this.phase = Phase.Head;
    } else if (this.status === 204 || this.status === 304) {
      this.remaining = 0;
      this.phase = Phase.Length;
    } else if (chunked) {
      this.phase = Phase.ChunkSize;
      this.line = '';
    } else if (length >= 0) {
      this.remaining = length;
      this.phase = Phase.Length;
    } else {
      this.keepAlive = false;
      this.phase = Phase.UntilClose;
    }
  }

  private capture(chunk: Buffer, from: number, to: number): void {
    if (this.errorText !== null && this.errorText.length < ERROR_TEXT) {
      this.errorText += chunk.toString('utf8', from, Math.min(to, from + ERROR_TEXT - this.errorText.length));
    }
  }

  private onData(chunk: Buffer): void {
    let off = 0;
    const len = chunk.length;
    while (off < len || (this.phase === Phase.Length && this.remaining === 0 && this.done)) {
      if (!this.done) {
        // Bytes with no request outstanding: the connection is out of step, drop it.
        this.fail('connection', 'unexpected data from the server');
        return;
      }
      switch (this.phase) {
        case Phase.Head: {
          let end: number;
          let text: string;
          if (this.head === null) {
            const i = chunk.indexOf(CRLFCRLF, off);
            if (i < 0) {
              this.head = Buffer.from(chunk.subarray(off));
              return;
            }
            text = chunk.toString('latin1', off, i);
            end = i + 4;
          } else {
            const prev = this.head.length;
            const joined = Buffer.concat([this.head, chunk.subarray(off)]);
            const i = joined.indexOf(CRLFCRLF, Math.max(0, prev - 3));
            if (i < 0) {
              if (joined.length > MAX_HEAD) {
                this.fail('protocol', 'response head too large');
                return;
              }
              this.head = joined;
              return;
            }
            text = joined.toString('latin1', 0, i);
            end = off + (i + 4 - prev);
            this.head = null;
          }
          off = end;
          this.parseHead(text);
          break;
        }
        case Phase.Length: {
          const take = Math.min(this.remaining, len - off);
          this.capture(chunk, off, off + take);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) this.complete();
          break;
        }
        case Phase.ChunkSize: {
          const nl = chunk.indexOf(10, off);
          if (nl < 0) {
            this.line += chunk.toString('latin1', off, len);
            return;
          }
          this.line += chunk.toString('latin1', off, nl);
          off = nl + 1;
          const size = parseInt(this.line, 16);
          this.line = '';
          if (!Number.isFinite(size)) {
            this.fail('protocol', 'bad chunk size');
            return;
          }
          if (size === 0) this.phase = Phase.Trailer;
          else {
            this.remaining = size;
            this.phase = Phase.ChunkData;
          }
          break;
        }
        case Phase.ChunkData: {
          const take = Math.min(this.remaining, len - off);
          this.capture(chunk, off, off + take);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.phase = Phase.ChunkCrlf;
            this.remaining = 2;
          }
          break;
        }
        case Phase.ChunkCrlf: {
          const take = Math.min(this.remaining, len - off);
          off += take;
          this.remaining -= take;
          if (this.remaining === 0) this.phase = Phase.ChunkSize;
          break;
        }
        case Phase.Trailer: {
          const nl = chunk.indexOf(10, off);
          if (nl < 0) {
            this.line += chunk.toString('latin1', off, len);
            return;
          }
          this.line += chunk.toString('latin1', off, nl);
          off = nl + 1;
          const empty = this.line.trim() === '';
          this.line = '';
          if (empty) this.complete();
          break;
        }
        case Phase.UntilClose:
          this.capture(chunk, off, len);
          return;
      }
    }
  }
}

export interface RawHttpOptions {
  /** Connections opened at most; requests beyond wait in a queue. */
  readonly maxConnections: number;
  /** Per-request inactivity limit; 0 for none. */
  readonly timeoutMs: number;
}

/** Transport over the minimal client: payload `i` is the pre-encoded request `requests[i % n]`. */
export class RawHttpTransport implements Transport {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private readonly waiting: { index: number; done: OutcomeCallback }[] = [];
  private closed = false;

  constructor(
    private readonly target: HttpTarget,
    private readonly requests: readonly Buffer[],
    private readonly opts: RawHttpOptions,
  ) {
    if (requests.length === 0) throw new Error('no request to send');
  }

  get connectionCount(): number {
    return this.all.size;
  }

  send(index: number, done: OutcomeCallback): void {
    if (this.closed) {
      done({ ok: false, errorKey: 'connection', errorMessage: 'transport closed' });
      return;
    }
    let conn = this.idle.pop();
    while (conn && !conn.alive) conn = this.idle.pop();
    if (!conn) {
      if (this.all.size >= this.opts.maxConnections) {
        this.waiting.push({ index, done });
        return;
      }
      conn = new Connection(
        this.target,
        this.opts.timeoutMs,
        (c) => this.release(c),
        (c) => this.drop(c),
      );
      this.all.add(conn);
    }
    conn.send(this.requests[index % this.requests.length]!, done);
  }

  private release(c: Connection): void {
    const next = this.waiting.shift();
    if (next && !this.closed) c.send(this.requests[next.index % this.requests.length]!, next.done);
    else this.idle.push(c);
  }

  private drop(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    // A waiting request gets a fresh connection in place of the dead one.
    const next = this.waiting.shift();
    if (next && !this.closed) this.send(next.index, next.done);
  }

  async close(): Promise<void> {
    this.closed = true;
    const waiting = this.waiting.splice(0);
    for (const c of [...this.all]) c.destroy();
    this.all.clear();
    this.idle.length = 0;
    for (const w of waiting) w.done({ ok: false, errorKey: 'connection', errorMessage: 'transport closed' });
  }
}

/**
 * The same requests through node:http with a keep-alive agent: slower per request, but a
 * complete HTTP implementation, for servers the minimal client does not get along with.
 */
export class NodeHttpTransport implements Transport {
  private readonly agent: http.Agent;

  constructor(
    private readonly target: HttpTarget,
    private readonly requests: readonly HttpRequestSpec[],
    private readonly opts: RawHttpOptions,
  ) {
    const Agent = target.secure ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: opts.maxConnections });
  }

  send(index: number, done: OutcomeCallback): void {
    const spec = this.requests[index % this.requests.length]!;
    const mod = this.target.secure ? https : http;
    let finished = false;
    const finish = (o: RequestOutcome): void => {
      if (!finished) {
        finished = true;
        done(o);
      }
    };
    const req = mod.request(
      {
        host: this.target.host,
        port: this.target.port,
        method: spec.method,
        path: `${this.target.basePath}${spec.path}`,
        agent: this.agent,
        headers: { ...(spec.headers ?? {}), 'content-length': String(spec.body?.length ?? 0) },
        timeout: this.opts.timeoutMs > 0 ? this.opts.timeoutMs : undefined,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let text = '';
        res.on('data', (d: Buffer) => {
          if (status >= 400 && text.length < ERROR_TEXT) text += d.toString('utf8', 0, ERROR_TEXT - text.length);
        });
        res.on('end', () =>
          finish(status >= 200 && status < 300 ? OK : { ok: false, errorKey: String(status), errorMessage: text || `HTTP ${status}` }),
        );
        res.on('error', (e) => finish({ ok: false, errorKey: 'connection', errorMessage: e.message }));
      },
    );
    req.on('timeout', () => {
      req.destroy();
      finish({ ok: false, errorKey: 'timeout', errorMessage: `no response within ${this.opts.timeoutMs} ms` });
    });
    req.on('error', (e) => finish({ ok: false, errorKey: 'connection', errorMessage: e.message }));
    req.end(spec.body);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}
