/**
 * Servers the serving-core benchmark compares inferd with, started as child processes so that
 * each has its own event loop, as in production:
 * - `http-limit`: a Fastify route that parses the same JSON body and returns a constant
 *   (the most any JSON-over-HTTP server can do on this machine);
 * - `main-thread`: a Fastify server that calls onnxruntime's run() on the event loop, the
 *   mistake the isolation figures are measured against.
 */
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';

const [kind, portArg, modelPath] = process.argv.slice(2);
const port = Number(portArg);
const app = Fastify({ bodyLimit: 64 * 1024 * 1024 });
app.get('/health', async () => ({ status: 'alive' }));

if (kind === 'http-limit') {
  app.post('/v2/models/:model/infer', async (req) => {
    const body = req.body as { inputs: Array<{ data: unknown[] }> };
    return { model_name: 'constant', model_version: '1', outputs: [{ name: 'n', datatype: 'INT64', shape: [1], data: [body.inputs[0]!.data.length] }] };
  });
} else if (kind === 'main-thread') {
  const session = await ort.InferenceSession.create(modelPath!, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  app.post('/v2/models/:model/infer', async (req) => {
    const body = req.body as { inputs: Array<{ name: string; shape: number[]; data: number[] }> };
    const t = body.inputs[0]!;
    const result = await session.run({ [t.name]: new ort.Tensor('float32', Float32Array.from(t.data.flat(Infinity) as number[]), t.shape) });
    const out = Object.values(result)[0]!;
    return { outputs: [{ name: 'out', datatype: 'FP32', shape: out.dims, data: Array.from(out.data as Float32Array) }] };
  });
} else {
  throw new Error(`unknown server kind ${kind}`);
}
await app.listen({ host: '127.0.0.1', port });
process.stdout.write('listening\n');
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
