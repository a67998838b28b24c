/**
 * The HTTP limit: a Fastify server (or with --plain, Node's own `node:http` with no framework) that speaks just enough of the Open Inference Protocol to be
 * driven by `inferd bench` and perf_analyzer (model metadata, configuration and the infer route), parses the same JSON request
 * body as a real server, and answers a constant of the size a real answer has. No model runs;
 * whatever a server does beyond this costs throughput.
 *
 *   node --import tsx bench/peers/http-limit.ts --port 18700 [--plain]
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';

interface Tensor {
  name: string;
  datatype: string;
  shape: number[];
}

const SERVER_METADATA = JSON.stringify({ name: 'http-limit', version: '0', extensions: [] });

/** A Triton-style configuration (perf_analyzer reads one): the batch dimension left out of dims. */
function config(name: string, m: { inputs: Tensor[]; outputs: Tensor[] }): unknown {
  const tensor = (t: Tensor) => ({ name: t.name, data_type: `TYPE_${t.datatype}`, dims: t.shape.slice(1) });
  return { name, platform: 'http-limit', max_batch_size: 64, input: m.inputs.map(tensor), output: m.outputs.map(tensor) };
}

/** Model signatures as the real model files declare them. */
const MODELS: Record<string, { inputs: Tensor[]; outputs: Tensor[]; answer: (batch: number) => unknown[] }> = {
  breast_cancer: {
    inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 30] }],
    outputs: [
      { name: 'probabilities', datatype: 'FP32', shape: [-1, 2] },
      { name: 'label', datatype: 'INT64', shape: [-1] },
    ],
    answer: (b) => [
      { name: 'probabilities', datatype: 'FP32', shape: [b, 2], data: Array.from({ length: 2 * b }, (_, i) => (i % 2 ? 0.9731 : 0.0269)) },
      { name: 'label', datatype: 'INT64', shape: [b], data: Array.from({ length: b }, () => 1) },
    ],
  },
  mobilenet_v2: {
    inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 224, 224] }],
    outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 1000] }],
    answer: (b) => [
      { name: 'logits', datatype: 'FP32', shape: [b, 1000], data: Array.from({ length: 1000 * b }, (_, i) => Math.fround(((i * 7919) % 2000) / 100 - 10)) },
    ],
  },
};

const { values } = parseArgs({ options: { port: { type: 'string', default: '18700' }, host: { type: 'string', default: '127.0.0.1' }, plain: { type: 'boolean', default: false } } });

if (values.plain) {
  await servePlain();
} else {
  await serveFastify();
}

/** The physical limit: node:http reads the body, JSON.parse, a constant answer; nothing else. */
async function servePlain(): Promise<void> {
  const cache = new Map<string, string>();
  const send = (res: import('node:http').ServerResponse, status: number, text: string): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (req.method === 'GET') {
      if (url === '/v2/health/ready') return send(res, 200, '{"ready":true}');
      if (url === '/v2') return send(res, 200, SERVER_METADATA);
      const configured = /^\/v2\/models\/([^/]+)\/config$/.exec(url)?.[1];
      if (configured !== undefined && MODELS[configured]) return send(res, 200, JSON.stringify(config(configured, MODELS[configured])));
      const name = /^\/v2\/models\/([^/]+)$/.exec(url)?.[1];
      const m = name === undefined ? undefined : MODELS[name];
      if (!m) return send(res, 404, '{"error":"not found"}');
      return send(res, 200, JSON.stringify({ name, versions: ['1'], platform: 'http-limit', inputs: m.inputs, outputs: m.outputs }));
    }
    const name = /^\/v2\/models\/([^/]+)\/infer$/.exec(url)?.[1];
    const m = name === undefined ? undefined : MODELS[name];
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!m) return send(res, 404, '{"error":"not found"}');
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs?: { shape?: number[] }[] };
      const batch = body.inputs?.[0]?.shape?.[0] ?? 1;
      const key = `${name}/${batch}`;
      let text = cache.get(key);
      if (text === undefined) {
        text = JSON.stringify({ model_name: name, model_version: '1', outputs: m.answer(batch) });
        cache.set(key, text);
      }
      send(res, 200, text);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(Number(values.port), values.host, r));
  process.stderr.write(`http-limit (node:http) listening on ${values.host}:${values.port}\n`);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => server.close(() => process.exit(0)));
}

async function serveFastify(): Promise<void> {

  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 * 1024 });
  // Answers are serialized once per model and batch size: the constant costs nothing per request.
  const cache = new Map<string, string>();

  app.get('/v2/health/ready', async () => ({ ready: true }));
  app.get('/v2', async (_req, reply) => reply.type('application/json').send(SERVER_METADATA));

  app.get<{ Params: { model: string } }>('/v2/models/:model', async (req, reply) => {
    const m = MODELS[req.params.model];
    if (!m) return reply.code(404).send({ error: `unknown model ${req.params.model}` });
    return { name: req.params.model, versions: ['1'], platform: 'http-limit', inputs: m.inputs, outputs: m.outputs };
  });

  app.get<{ Params: { model: string } }>('/v2/models/:model/config', async (req, reply) => {
    const m = MODELS[req.params.model];
    if (!m) return reply.code(404).send({ error: `unknown model ${req.params.model}` });
    return config(req.params.model, m);
  });

  app.post<{ Params: { model: string }; Body: { inputs?: { shape?: number[] }[] } }>('/v2/models/:model/infer', async (req, reply) => {
    const m = MODELS[req.params.model];
    if (!m) return reply.code(404).send({ error: `unknown model ${req.params.model}` });
    const batch = req.body?.inputs?.[0]?.shape?.[0] ?? 1;
    const key = `${req.params.model}/${batch}`;
    let text = cache.get(key);
    if (text === undefined) {
      text = JSON.stringify({ model_name: req.params.model, model_version: '1', outputs: m.answer(batch) });
      cache.set(key, text);
    }
    return reply.type('application/json').send(text);
  });

  await app.listen({ port: Number(values.port), host: values.host });
  process.stderr.write(`http-limit listening on ${values.host}:${values.port}\n`);
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => {
      void app.close().then(() => process.exit(0));
    });
  }
}
