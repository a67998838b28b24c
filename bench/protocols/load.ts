/**
 * Closed-loop load: N callers, each sending the same pre-encoded request again as soon as its
 * previous answer arrives. HTTP goes through node:http with a keep-alive agent (one connection
 * per caller); gRPC through @grpc/grpc-js with the request already serialised and the response
 * left as bytes, over one channel. Bytes on the wire are counted from what the client writes and
 * reads: the request body it sends and the response body it receives (for gRPC, the protobuf
 * message without the 5-byte gRPC frame prefix).
 */
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { EncodedRequest, MethodDefinition, ReceivedResponse } from './wire.js';

export interface Transport {
  /** Sends the request once; resolves to the response body's size in bytes, rejects on any failure. */
  once(): Promise<number>;
  /** Sends the request once and returns the whole response (for checking answers, not timed). */
  fetch(): Promise<ReceivedResponse>;
  readonly requestBytes: number;
  close(): void;
}

export interface Target {
  host: string;
  httpPort: number;
  grpcPort: number;
}

export function httpTransport(target: Target, path: string, request: EncodedRequest, connections: number): Transport {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections, scheduling: 'fifo' });
  const headers = { ...request.headers, 'content-length': String(request.body.byteLength) };
  const send = (keep: boolean): Promise<ReceivedResponse & { bytes: number }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: target.host, port: target.httpPort, path, method: 'POST', agent, headers }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        const ok = res.statusCode === 200;
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.byteLength;
          if (keep || !ok) chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          if (!ok) {
            reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
            return;
          }
          const headerLength = res.headers['inference-header-content-length'];
          resolve({
            bytes,
            body: keep ? Buffer.concat(chunks) : Buffer.alloc(0),
            ...(typeof headerLength === 'string' ? { headerLength: Number(headerLength) } : {}),
          });
        });
      });
      req.on('error', reject);
      req.end(request.body);
    });
  return {
    requestBytes: request.body.byteLength,
    once: async () => (await send(false)).bytes,
    fetch: () => send(true),
    close: () => agent.destroy(),
  };
}

const identity = (b: Buffer): Buffer => b;

export function grpcTransport(target: Target, method: MethodDefinition, request: EncodedRequest): Transport {
  const client = new grpc.Client(`${target.host}:${target.grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  const send = (): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      client.makeUnaryRequest<Buffer, Buffer>(method.path, identity, identity, request.body, (error, response) => {
        if (error) reject(error);
        else resolve(response!);
      });
    });
  return {
    requestBytes: request.body.byteLength,
    once: async () => (await send()).byteLength,
    fetch: async () => ({ body: await send() }),
    close: () => client.close(),
  };
}

export interface LoadResult {
  concurrency: number;
  /** Length of the measurement window, seconds. */
  seconds: number;
  completed: number;
  errors: number;
  firstError?: string;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  requestBytes: number;
  responseBytes: number;
  /** CPU time of this (client) process per completed request, ms. */
  clientCpuMsPerRequest: number;
}

/**
 * Called at both edges of the measurement window, while the load runs. Whatever it reads
 * synchronously is read at the edge itself; anything it awaits lands a few milliseconds later.
 */
export type Snapshot<T> = () => T | Promise<T>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/**
 * Runs `concurrency` callers for a warm-up, then measures a window of `durationMs`: requests
 * completing inside it count towards throughput and latency. `snapshot` is taken right at the
 * start and end of the window (server counters), and both values are returned.
 */
export async function closedLoop<T>(
  transport: Transport,
  concurrency: number,
  warmupMs: number,
  durationMs: number,
  snapshot: Snapshot<T>,
): Promise<{ result: LoadResult; before: T; after: T }> {
  let stopping = false;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  const latencies: number[] = [];
  let responseBytes = 0;
  let errors = 0;
  let firstError: string | undefined;

  const caller = async (): Promise<void> => {
    while (!stopping) {
      const t0 = performance.now();
      try {
        const bytes = await transport.once();
        const t1 = performance.now();
        if (t1 >= windowStart && t1 <= windowEnd) {
          latencies.push(t1 - t0);
          responseBytes += bytes;
        }
      } catch (error) {
        const t1 = performance.now();
        if (t1 >= windowStart && t1 <= windowEnd) errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(20);
      }
    }
  };

  const callers = Array.from({ length: concurrency }, caller);
  await sleep(warmupMs);
  windowStart = performance.now();
  const cpu0 = process.cpuUsage();
  const before = await snapshot();
  await sleep(Math.max(0, durationMs - (performance.now() - windowStart)));
  windowEnd = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const after = await snapshot();
  stopping = true;
  await Promise.all(callers);

  const seconds = (windowEnd - windowStart) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  const completed = latencies.length;
  const result: LoadResult = {
    concurrency,
    seconds,
    completed,
    errors,
    throughput: completed / seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    meanMs: completed > 0 ? latencies.reduce((a, b) => a + b, 0) / completed : NaN,
    requestBytes: transport.requestBytes,
    responseBytes: completed > 0 ? responseBytes / completed : NaN,
    clientCpuMsPerRequest: completed > 0 ? (cpu.user + cpu.system) / 1000 / completed : NaN,
  };
  if (firstError !== undefined) result.firstError = firstError;
  return { result, before, after };
}
