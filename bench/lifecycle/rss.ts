/**
 * Does unloading free memory? A real `inferd serve` (explicit mode) loads, uses and unloads a
 * model 50 times through the repository API; the server's resident set size (VmRSS) is read
 * after 3 warm-up cycles, with the model loaded, and after the 50 cycles.
 *
 *   npm run build && npx tsx bench/lifecycle/rss.ts [--cycles 50] [--models breast_cancer,mobilenet_v2]
 */
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES, flag, post, round, SHARED, startServer } from './common.js';

const CYCLES = Number(flag('cycles', '50'));
const MODELS = flag('models', 'breast_cancer,mobilenet_v2').split(',');
const MB = 2 ** 20;

const MOBILENET_CONFIG = `max_batch_size: 8
onnx: { intra_op_threads: 2 }
warmup: [{ batch_size: 1, count: 1, inputs: { input: random } }]
`;

const BODIES: Record<string, string | undefined> = {
  breast_cancer: JSON.stringify({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(30).fill(1) }] }),
};

async function repository(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inferd-rss-'));
  await cp(join(EXAMPLES, 'breast_cancer'), join(root, 'breast_cancer'), { recursive: true });
  await cp(join(SHARED, 'mobilenet_v2', '1'), join(root, 'mobilenet_v2', '1'), { recursive: true });
  await writeFile(join(root, 'mobilenet_v2', 'config.yaml'), MOBILENET_CONFIG);
  return root;
}

const server = await startServer({ model_repository: await repository(), model_control: { mode: 'explicit' } });
const rows: string[] = [];
try {
  for (const model of MODELS) {
    const cycle = async (): Promise<number> => {
      const load = await post(`${server.url}/v2/repository/models/${model}/load`, '{}');
      if (load.status !== 200) throw new Error(`load ${model}: ${load.status} ${load.text}`);
      const body = BODIES[model];
      if (body) {
        const r = await post(`${server.url}/v2/models/${model}/infer`, body);
        if (r.status !== 200) throw new Error(`infer ${model}: ${r.status} ${r.text}`);
      }
      const loaded = server.rss();
      const unload = await post(`${server.url}/v2/repository/models/${model}/unload`, '{}');
      if (unload.status !== 200) throw new Error(`unload ${model}: ${unload.status}`);
      return loaded;
    };
    for (let i = 0; i < 3; i++) await cycle();
    const before = server.rss();
    let loaded = 0;
    const started = performance.now();
    for (let i = 0; i < CYCLES; i++) loaded = Math.max(loaded, await cycle());
    const seconds = (performance.now() - started) / 1000;
    const after = server.rss();
    const row = `| ${model} | ${round(before / MB)} | ${round(loaded / MB)} | ${round(after / MB)} | ${round((after - before) / MB)} | ${round((seconds * 1000) / CYCLES, 0)} |`;
    rows.push(row);
    console.log(row);
  }
} finally {
  await server.stop();
}
console.log(`\n${CYCLES} load/infer/unload cycles per model on one inferd serve process (VmRSS):`);
console.log('| model | RSS after 3 warm-up cycles (MB) | highest RSS while loaded (MB) | RSS after the cycles (MB) | growth (MB) | ms per cycle |');
console.log('|---|---|---|---|---|---|');
for (const row of rows) console.log(row);
