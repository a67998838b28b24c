/**
 * A small Open Inference Protocol server for one fake model, for load generator tests:
 * metadata, an echoing infer route (JSON and binary extension), and Triton-shaped statistics.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeModel {
  name: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
}

export interface FakeServerOptions {
  model?: FakeModel;
  /** Every Nth infer request answers 503. */
  failEvery?: number;
  /** Delay before answering an infer request. */
  delayMs?: number;
  /** Answer infer requests with chunked transfer encoding. */
  chunked?: boolean;
  /** Close the connection after every Nth response. */
  closeEvery?: number;
  /** Serve the statistics route. */
  stats?: boolean;
  /** Server-side time booked per request in the statistics, in ns. */
  statsNs?: { queue: number; computeInput: number; computeInfer: number; computeOutput: number };
}

export interface ReceivedInput {
  name: string;
  datatype: string;
  shape: number[];
  data?: unknown[];
  /** Raw bytes of a binary-extension input. */
  raw?: Buffer;
}

export interface FakeServer {
  url: string;
  port: number;
  /** Infer requests received, including failed ones. */
  inferCount: number;
  /** Inputs of every infer request, in arrival order. */
  received: ReceivedInput[][];
  statsCalls: number;
  close(): Promise<void>;
}

export const DEFAULT_MODEL: FakeModel = {
  name: 'fake',
  inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
};

export async function startFakeServer(opts: FakeServerOptions = {}): Promise<FakeServer> {
  const model = opts.model ?? DEFAULT_MODEL;
  const ns = opts.statsNs ?? { queue: 100_000, computeInput: 20_000, computeInfer: 300_000, computeOutput: 30_000 };
  let success = 0;
  let responses = 0;
  const state: FakeServer = {
    url: '',
    port: 0,
    inferCount: 0,
    received: [],
    statsCalls: 0,
    close: async () => {},
  };
  const base = `/v2/models/${model.name}`;
  const send = (res: http.ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    responses++;
    const close = opts.closeEvery !== undefined && responses % opts.closeEvery === 0;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (close) headers['connection'] = 'close';
    if (opts.chunked) {
      res.writeHead(status, headers);
      // Three writes: the client must reassemble chunks split across packets.
      const third = Math.ceil(text.length / 3);
      res.write(text.slice(0, third));
      res.write(text.slice(third, 2 * third));
      res.end(text.slice(2 * third));
    } else {
      headers['content-length'] = String(Buffer.byteLength(text));
      res.writeHead(status, headers);
      res.end(text);
    }
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '';
      if (req.method === 'GET' && url === base) {
        send(res, 200, {
          name: model.name,
          versions: ['1'],
          platform: 'fake',
          inputs: model.inputs,
          outputs: model.inputs.map((i) => ({ ...i, name: `${i.name}_out` })),
        });
        return;
      }
      if (req.method === 'GET' && url === `${base}/stats` && opts.stats) {
        state.statsCalls++;
        const c = (n: number) => ({ count: success, ns: success * n });
        send(res, 200, {
          model_stats: [
            {
              name: model.name,
              version: '1',
              inference_count: success,
              inference_stats: {
                success: c(ns.queue + ns.computeInput + ns.computeInfer + ns.computeOutput),
                fail: { count: 0, ns: 0 },
                queue: c(ns.queue),
                compute_input: c(ns.computeInput),
                compute_infer: c(ns.computeInfer),
                compute_output: c(ns.computeOutput),
              },
            },
          ],
        });
        return;
      }
      if (req.method === 'POST' && url === `${base}/infer`) {
        state.inferCount++;
        const n = state.inferCount;
        const body = Buffer.concat(chunks);
        const headerLen = req.headers['inference-header-content-length'];
        let inputs: ReceivedInput[];
        try {
          if (headerLen !== undefined) {
            const hl = Number(headerLen);
            const head = JSON.parse(body.subarray(0, hl).toString()) as { inputs: (ReceivedInput & { parameters?: { binary_data_size?: number } })[] };
            let off = hl;
            inputs = head.inputs.map((i) => {
              const size = i.parameters?.binary_data_size ?? 0;
              const raw = body.subarray(off, off + size);
              off += size;
              return { name: i.name, datatype: i.datatype, shape: i.shape, raw };
            });
          } else {
            inputs = (JSON.parse(body.toString()) as { inputs: ReceivedInput[] }).inputs;
          }
        } catch (e) {
          send(res, 400, { error: `bad request: ${(e as Error).message}` });
          return;
        }
        state.received.push(inputs);
        const answer = (): void => {
          if (opts.failEvery !== undefined && n % opts.failEvery === 0) {
            send(res, 503, { error: 'overloaded' });
            return;
          }
          success++;
          send(res, 200, {
            model_name: model.name,
            outputs: inputs.map((i) => ({ name: `${i.name}_out`, datatype: i.datatype, shape: i.shape, data: i.data ?? [] })),
          });
        };
        if (opts.delayMs) setTimeout(answer, opts.delayMs);
        else answer();
        return;
      }
      send(res, 404, { error: `no route ${req.method} ${url}` });
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  state.port = port;
  state.url = `http://127.0.0.1:${port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
