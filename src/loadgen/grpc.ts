/**
 * gRPC side of the load generator: the OIP `inference.GRPCInferenceService`, with requests
 * serialized once before the run and responses left undecoded on the hot path.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { tensorBytes } from './payload.js';
import type { ModelMetadata, OutcomeCallback, RequestInputs, RequestOutcome, RequestTensor, TensorSpec, Transport } from './types.js';
import { parseStats, type StatsSource } from './stats.js';
import { FIELD_OF } from '../codecs/grpc.js';

const SERVICE = 'inference.GRPCInferenceService';

/** Where the server's copy of the OIP proto lives, relative to this module (src/ or dist/). */
export function defaultProtoPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [
    path.resolve(here, '../server/grpc/proto/grpc_service.proto'),
    path.resolve(here, '../../src/server/grpc/proto/grpc_service.proto'),
  ];
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

interface MethodDef {
  readonly path: string;
  readonly requestSerialize: (value: object) => Buffer;
  readonly responseDeserialize: (bytes: Buffer) => unknown;
}

export interface GrpcService {
  readonly methods: ReadonlyMap<string, MethodDef>;
}

export function loadService(protoPath: string = defaultProtoPath()): GrpcService {
  if (!existsSync(protoPath)) {
    throw new Error(`OIP gRPC proto not found at ${protoPath} (pass --proto to point at grpc_service.proto)`);
  }
  const def = protoLoader.loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const svc = def[SERVICE] as Record<string, MethodDef> | undefined;
  if (!svc || typeof svc !== 'object' || !('ModelInfer' in svc)) throw new Error(`${protoPath} does not define ${SERVICE}`);
  return { methods: new Map(Object.entries(svc)) };
}

export function grpcAddress(url: string): string {
  return url.replace(/^grpcs?:\/\//, '').replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // Separate channels must not share one HTTP/2 connection, or extra channels add nothing.
  'grpc.use_local_subchannel_pool': 1,
};

const identity = (b: Buffer): Buffer => b;

function call(client: grpc.Client, method: MethodDef, request: object, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, value?: unknown) => (err ? reject(err) : resolve(value)),
    );
  });
}

function method(svc: GrpcService, name: string): MethodDef {
  const m = svc.methods.get(name);
  if (!m) throw new Error(`the proto has no ${name} method`);
  return m;
}

function toSpecs(v: unknown): TensorSpec[] {
  if (!Array.isArray(v)) return [];
  return v.map((t: { name?: string; datatype?: string; shape?: (string | number)[] }) => ({
    name: String(t.name ?? ''),
    datatype: String(t.datatype ?? ''),
    shape: (t.shape ?? []).map(Number),
  }));
}

export async function grpcModelMetadata(
  svc: GrpcService,
  address: string,
  model: string,
  version: string | undefined,
): Promise<ModelMetadata> {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  try {
    const r = (await call(client, method(svc, 'ModelMetadata'), { name: model, version: version ?? '' }, 10_000)) as {
      name?: string;
      versions?: string[];
      platform?: string;
      inputs?: unknown;
      outputs?: unknown;
    };
    return {
      name: r.name ?? model,
      versions: r.versions ?? [],
      platform: r.platform ?? '',
      inputs: toSpecs(r.inputs),
      outputs: toSpecs(r.outputs),
    };
  } finally {
    client.close();
  }
}

/** Statistics over gRPC where the proto has Triton's ModelStatistics; undefined otherwise. */
export function grpcStatsSource(
  svc: GrpcService,
  address: string,
  model: string,
  version: string | undefined,
): StatsSource | undefined {
  const m = svc.methods.get('ModelStatistics');
  if (!m) return undefined;
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  return {
    fetch: async () => parseStats(await call(client, m, { name: model, version: version ?? '' }, 5_000)),
    close: () => client.close(),
  };
}


function typedContents(t: RequestTensor): Record<string, unknown[]> {
  const field = FIELD_OF[t.datatype as keyof typeof FIELD_OF];
  if (!field) throw new Error(`${t.datatype} has no typed contents field; use --binary (raw_input_contents)`);
  if (t.datatype === 'BOOL') return { [field]: (t.values as readonly number[]).map((v) => v !== 0) };
  if (t.datatype === 'BYTES') return { [field]: (t.values as readonly string[]).map((v) => Buffer.from(String(v))) };
  if (t.datatype === 'INT64' || t.datatype === 'UINT64') return { [field]: t.values.map((v) => String(v)) };
  return { [field]: [...t.values] };
}

/** A serialized ModelInferRequest: typed contents, or raw little-endian bytes with `raw`. */
export function encodeGrpcRequest(
  svc: GrpcService,
  model: string,
  version: string | undefined,
  inputs: RequestInputs,
  raw: boolean,
): Buffer {
  const useRaw = raw || inputs.some((t) => t.datatype === 'FP16' || t.datatype === 'BF16');
  const msg = {
    model_name: model,
    model_version: version ?? '',
    inputs: inputs.map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: t.shape.map(String),
      ...(useRaw ? {} : { contents: typedContents(t) }),
    })),
    raw_input_contents: useRaw ? inputs.map(tensorBytes) : [],
  };
  return method(svc, 'ModelInfer').requestSerialize(msg);
}

export interface GrpcTransportOptions {
  /** HTTP/2 connections; calls are spread over them round-robin. */
  readonly channels: number;
  readonly timeoutMs: number;
}

/** Adds the gRPC message prefix: a compression flag (0) and a 4-byte big-endian length. */
export function frameGrpcMessage(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

const GRPC_CODES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([k]) => Number.isNaN(Number(k)))
    .map(([k, v]) => [String(v), k]),
);

function grpcMessage(v: unknown): string {
  if (typeof v !== 'string') return '';
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}

/**
 * Unary gRPC calls made directly on node:http2 streams: a pre-framed request, and a response
 * read only for its grpc-status. About half the CPU per call of @grpc/grpc-js, whose channel
 * machinery a load generator does not need.
 */
export class Http2GrpcTransport implements Transport {
  private readonly sessions: (http2.ClientHttp2Session | null)[];
  private readonly headers: http2.OutgoingHttpHeaders;
  private readonly framed: readonly Buffer[];
  private next = 0;
  private closed = false;

  constructor(
    svc: GrpcService,
    private readonly address: string,
    requests: readonly Buffer[],
    private readonly opts: GrpcTransportOptions,
  ) {
    this.framed = requests.map(frameGrpcMessage);
    this.headers = {
      ':method': 'POST',
      ':path': method(svc, 'ModelInfer').path,
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'inferd-bench',
      ...(opts.timeoutMs > 0 ? { 'grpc-timeout': `${opts.timeoutMs}m` } : {}),
    };
    this.sessions = Array.from({ length: Math.max(1, opts.channels) }, () => null);
  }

  private session(i: number): http2.ClientHttp2Session {
    const existing = this.sessions[i];
    if (existing && !existing.closed && !existing.destroyed) return existing;
    const s = http2.connect(`http://${this.address}`, {
      settings: { initialWindowSize: 16 * 1024 * 1024, enablePush: false },
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.sessions[i] === s) this.sessions[i] = null;
    });
    s.on('goaway', () => {
      if (this.sessions[i] === s) this.sessions[i] = null;
    });
    this.sessions[i] = s;
    return s;
  }

  send(index: number, done: OutcomeCallback): void {
    if (this.closed) {
      done({ ok: false, errorKey: 'connection', errorMessage: 'transport closed' });
      return;
    }
    let finished = false;
    let status: string | undefined;
    let message = '';
    let httpStatus = 0;
    const finish = (o: RequestOutcome): void => {
      if (!finished) {
        finished = true;
        done(o);
      }
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.session(this.next++ % this.sessions.length).request(this.headers);
    } catch (e) {
      finish({ ok: false, errorKey: 'connection', errorMessage: (e as Error).message });
      return;
    }
    stream.on('response', (h) => {
      httpStatus = Number(h[':status'] ?? 0);
      // A trailers-only response carries the status in the headers.
      if (h['grpc-status'] !== undefined) {
        status = String(h['grpc-status']);
        message = grpcMessage(h['grpc-message']);
      }
    });
    stream.on('trailers', (t) => {
      status = String(t['grpc-status']);
      message = grpcMessage(t['grpc-message']);
    });
    stream.on('data', () => {});
    stream.on('error', (e: Error) => finish({ ok: false, errorKey: 'connection', errorMessage: e.message }));
    stream.on('close', () => {
      if (status === '0') finish(OK_OUTCOME);
      else if (status !== undefined) {
        const code = GRPC_CODES[status] ?? status;
        finish({ ok: false, errorKey: `grpc:${code}`, errorMessage: message || code });
      } else if (httpStatus !== 0 && httpStatus !== 200) {
        finish({ ok: false, errorKey: `http2:${httpStatus}`, errorMessage: `HTTP/2 status ${httpStatus}` });
      } else {
        finish({ ok: false, errorKey: 'connection', errorMessage: 'stream closed without a gRPC status' });
      }
    });
    stream.end(this.framed[index % this.framed.length]);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.sessions) s?.destroy();
    this.sessions.fill(null);
  }
}

const OK_OUTCOME: RequestOutcome = { ok: true };

/** The same calls through @grpc/grpc-js, for servers the direct HTTP/2 path does not suit. */
export class GrpcJsTransport implements Transport {
  private readonly clients: grpc.Client[];
  private readonly path: string;
  private next = 0;

  constructor(
    svc: GrpcService,
    address: string,
    private readonly requests: readonly Buffer[],
    private readonly opts: GrpcTransportOptions,
  ) {
    this.path = method(svc, 'ModelInfer').path;
    this.clients = Array.from(
      { length: Math.max(1, opts.channels) },
      () => new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS),
    );
  }

  send(index: number, done: OutcomeCallback): void {
    const client = this.clients[this.next++ % this.clients.length]!;
    const options: grpc.CallOptions = this.opts.timeoutMs > 0 ? { deadline: Date.now() + this.opts.timeoutMs } : {};
    client.makeUnaryRequest(
      this.path,
      identity,
      identity,
      this.requests[index % this.requests.length]!,
      options,
      (err: grpc.ServiceError | null) => {
        if (!err) done({ ok: true });
        else {
          const code = grpc.status[err.code] ?? String(err.code);
          done({ ok: false, errorKey: `grpc:${code}`, errorMessage: err.details || err.message });
        }
      },
    );
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
  }
}
