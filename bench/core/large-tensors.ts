/**
 * Large tensors against the model alone: mobilenet_v2 (one 3x224x224 FP32 picture per request,
 * 2.9 MB as JSON, 602 KB binary) over REST + JSON on two server configurations A and B, REST
 * with the binary extension and gRPC on A, and onnxruntime-node `session.run` alone in its own
 * process, in alternating rounds (raw, A, B, ..., raw) so that all meet the same machine load.
 * Each cell's "% of raw" is taken against the model alone measured right around it, at the batch
 * size the server formed; the table shows medians over rounds, the 1-minute load average, and
 * the server's CPU per request (all threads; main thread).
 *
 *   npm run build && npx tsx bench/core/large-tensors.ts [--rounds 4] [--seconds 3] [--concurrency 1,4]
 *       [--a-env K=V,...] [--b-env K=V,...] [--b-root DIR] [--cells json-a,json-b,binary-a,grpc-a] [--raw-spin]
 *       [--server-warmup 10]
 *
 * Before the first round every cell runs --server-warmup seconds at the highest concurrency, so
 * that V8 has optimised the servers' code: at these request rates it runs unoptimised for its
 * first seconds (the main thread's CPU per binary request falls from 1.0 to 0.6 ms over 40 s).
 *
 * The model alone runs as the servers run it: intra-op threads do not spin (inferd's default,
 * `onnx.allow_spinning: false`); --raw-spin lets them, as onnxruntime does by default.
 *
 * By default A decodes large JSON bodies while they arrive (INFERD_SERVER__JSON_DECODE_ARRIVING=true)
 * and B once they are in (the default). --b-root serves B from another built checkout.
 */
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MOBILENET_CONFIG, syntheticImage } from '../protocols/inputs.js';
import { closedLoop, grpcTransport, httpTransport, type Target, type Transport } from '../protocols/load.js';
import type { RawPoint } from '../protocols/raw-model.js';
import { RawModelProcess } from '../protocols/raw-model-client.js';
import { batchCounters, counterDelta, makeRepository, startServer, type RunningServer } from '../protocols/server.js';
import { encodeRequest, modelInferMethod, type InputTensor, type Protocol } from '../protocols/wire.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ONNX = resolve(ROOT, '..', 'shared', 'models', 'mobilenet_v2', '1', 'model.onnx');
const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    concurrency: { type: 'string', default: '1,4' },
    'a-env': { type: 'string', default: 'INFERD_SERVER__JSON_DECODE_ARRIVING=true' },
    'b-env': { type: 'string', default: '' },
    'b-root': { type: 'string' },
    cells: { type: 'string', default: 'json-a,json-b,binary-a,grpc-a' },
    'raw-spin': { type: 'boolean', default: false },
    'server-warmup': { type: 'string', default: '10' },
  },
});
const ROUNDS = Number(flags.rounds);
const SECONDS = Number(flags.seconds);
const WARMUP = Number(flags.warmup);
const CONCURRENCY = flags.concurrency!.split(',').map(Number);
const CELLS = flags.cells!.split(',');
const envOf = (text: string): Record<string, string> => Object.fromEntries(text.split(',').filter(Boolean).map((kv) => kv.split('=', 2) as [string, string]));

const INPUT: InputTensor = { name: 'input', shape: [1, 3, 224, 224], values: syntheticImage(3 * 224 * 224) };

const log = (m: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');


interface Sample {
  rps: number;
  pctOfRaw: number;
  cpuMs: number;
  mainMs: number;
  meanBatch: number;
  p50: number;
  load1: number;
}

async function cell(server: RunningServer, protocol: Protocol, concurrency: number): Promise<Omit<Sample, 'pctOfRaw'>> {
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const request = encodeRequest(protocol, 'mobilenet_v2', INPUT);
  const transport: Transport = protocol === 'grpc' ? grpcTransport(target, modelInferMethod(), request) : httpTransport(target, '/v2/models/mobilenet_v2/infer', request, concurrency);
  const snapshot = async () => ({ cpu: server.cpu(), counters: await batchCounters(server.httpPort, 'mobilenet_v2') });
  const { result, before, after } = await closedLoop(transport, concurrency, WARMUP * 1000, SECONDS * 1000, snapshot);
  transport.close();
  if (result.errors > 0) throw new Error(`${protocol} c=${concurrency}: ${result.errors} errors, first: ${result.firstError}`);
  const d = counterDelta(before.counters, after.counters);
  return {
    rps: result.throughput,
    cpuMs: (after.cpu.totalMs - before.cpu.totalMs) / d.inferences,
    mainMs: (after.cpu.mainMs - before.cpu.mainMs) / d.inferences,
    meanBatch: d.inferences / d.executions,
    p50: result.p50Ms,
    load1: loadavg()[0]!,
  };
}

const work = mkdtempSync(join(tmpdir(), 'inferd-large-'));
const repo = makeRepository(work, [{ name: 'mobilenet_v2', onnx: ONNX, config: MOBILENET_CONFIG }]);
const a = await startServer({ root: ROOT, repository: repo, logFile: join(work, 'a.log'), readyModels: ['mobilenet_v2'], env: { INFERD_LOGGING__ACCESS_LOG: 'false', ...envOf(flags['a-env']!) } });
const b = await startServer({ root: flags['b-root'] ? resolve(flags['b-root']) : ROOT, repository: repo, logFile: join(work, 'b.log'), readyModels: ['mobilenet_v2'], env: { INFERD_LOGGING__ACCESS_LOG: 'false', ...envOf(flags['b-env']!) } });
// The model alone at the server's spinning setting (off unless the model's configuration turns it on).
const raw = await RawModelProcess.start(['--model', ONNX, '--threads', '2', ...(flags['raw-spin'] ? [] : ['--no-spin'])]);
for (const name of CELLS) {
  const [protocol, side] = name.split('-') as [Protocol, 'a' | 'b'];
  const server = side === 'a' ? a : b;
  const target: Target = { host: '127.0.0.1', httpPort: server.httpPort, grpcPort: server.grpcPort };
  const request = encodeRequest(protocol, 'mobilenet_v2', INPUT);
  const concurrency = Math.max(...CONCURRENCY);
  const transport = protocol === 'grpc' ? grpcTransport(target, modelInferMethod(), request) : httpTransport(target, '/v2/models/mobilenet_v2/infer', request, concurrency);
  await closedLoop(transport, concurrency, Number(flags['server-warmup']) * 1000, 100, () => undefined);
  transport.close();
}
const samples = new Map<string, Sample[]>();
const rawSamples = new Map<number, number[]>();
const loads: number[] = [loadavg()[0]!];
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CONCURRENCY) {
      // Alternate the order of A and B between rounds.
      const cells = round % 2 === 0 ? CELLS : [...CELLS].reverse();
      const rawBefore = await raw.measure([1, 2, 4], SECONDS / 2);
      const measured: Array<[string, Omit<Sample, 'pctOfRaw'>]> = [];
      for (const name of cells) {
        const [protocol, side] = name.split('-') as [Protocol, 'a' | 'b'];
        measured.push([name, await cell(side === 'a' ? a : b, protocol, c)]);
      }
      const rawAfter = await raw.measure([1, 2, 4], SECONDS / 2);
      const rawAt = (batch: number): number => {
        const pick = (points: RawPoint[]) => points.reduce((best, p) => (Math.abs(p.batch - batch) < Math.abs(best.batch - batch) ? p : best)).rowsPerSecond;
        return (pick(rawBefore) + pick(rawAfter)) / 2;
      };
      (rawSamples.get(c) ?? rawSamples.set(c, []).get(c)!).push(rawAt(1));
      for (const [name, s] of measured) {
        const key = `${name} c=${c}`;
        (samples.get(key) ?? samples.set(key, []).get(key)!).push({ ...s, pctOfRaw: (100 * s.rps) / rawAt(s.meanBatch) });
        log(`round ${round + 1} ${key}: ${f(s.rps)} req/s, ${f((100 * s.rps) / rawAt(s.meanBatch))}% of raw (raw b1 ${f(rawAt(1))}), batch ${f(s.meanBatch, 2)}, cpu ${f(s.cpuMs, 2)} / main ${f(s.mainMs, 2)} ms/req, load ${f(s.load1, 2)}`);
      }
      loads.push(loadavg()[0]!);
    }
  }
} finally {
  raw.close();
  await Promise.all([a.stop(), b.stop()]);
}

console.log(`\n${ROUNDS} rounds of ${SECONDS} s per cell, model alone ${flags['raw-spin'] ? 'spinning' : 'not spinning'}, A: ${flags['a-env'] || '(defaults)'}; B: ${flags['b-env'] || '(defaults)'}${flags['b-root'] ? ` from ${flags['b-root']}` : ''}; load average ${f(Math.min(...loads), 2)}-${f(Math.max(...loads), 2)}\n`);
console.log('| cell | req/s | % of raw (at its batch) | mean batch | p50 ms | server CPU ms/req | main thread ms/req | model alone b1 rows/s |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [key, list] of samples) {
  const c = Number(key.split('c=')[1]);
  console.log(`| ${key} | ${f(median(list.map((s) => s.rps)))} | ${f(median(list.map((s) => s.pctOfRaw)), 0)}% (${f(Math.min(...list.map((s) => s.pctOfRaw)), 0)}-${f(Math.max(...list.map((s) => s.pctOfRaw)), 0)}) | ${f(median(list.map((s) => s.meanBatch)), 2)} | ${f(median(list.map((s) => s.p50)), 1)} | ${f(median(list.map((s) => s.cpuMs)), 2)} | ${f(median(list.map((s) => s.mainMs)), 2)} | ${f(median(rawSamples.get(c)!))} |`);
}
// Paired ratios of JSON B to JSON A, round by round (same machine load).
for (const c of CONCURRENCY) {
  const A = samples.get(`json-a c=${c}`);
  const B = samples.get(`json-b c=${c}`);
  if (!A || !B) continue;
  const ratios = A.map((s, i) => s.rps / B[i]!.rps);
  console.log(`\nJSON A / B at c=${c}, per round: ${ratios.map((r) => f(r, 2)).join(', ')}; median ${f(median(ratios), 2)}`);
}
