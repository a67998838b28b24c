/**
 * Cold start per example model, on a real `inferd serve` process serving that model alone:
 * - eager: process spawn → `/health/ready` 200 (Node start, listen, load, warm-up), and the
 *   model's own load time as the admin API reports it (`last_load_ms`: worker thread start,
 *   session creation, warm-up);
 * - lazy: process spawn → ready (the model not loaded), then the first inference's latency
 *   (load, warm-up and the request);
 * - breast_cancer served eagerly from a SQLite registry alias (resolution and SHA-256 check
 *   included).
 * Medians of `--runs` runs (default 3).
 *
 *   npm run build && npx tsx bench/lifecycle/cold-start.ts [--runs 3]
 */
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { readFile } from 'node:fs/promises';
import { openRegistry } from '../../src/registry/open.js';
import { EXAMPLES, flag, median, post, round, SHARED, startServer } from './common.js';

const RUNS = Number(flag('runs', '3'));

interface Model {
  name: string;
  copy(root: string): Promise<void>;
  body: string;
}

const example = (name: string, body: unknown): Model => ({
  name,
  copy: (root) => cp(join(EXAMPLES, name), join(root, name), { recursive: true }),
  body: JSON.stringify(body),
});

const MODELS: Model[] = [
  example('breast_cancer', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 30], data: Array(30).fill(1) }] }),
  example('digits', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 1, 8, 8], data: Array(64).fill(0.5) }] }),
  example('text_encoder_tiny', {
    inputs: [
      { name: 'input_ids', datatype: 'INT64', shape: [1, 12], data: Array.from({ length: 12 }, (_, i) => i + 5) },
      { name: 'attention_mask', datatype: 'INT64', shape: [1, 12], data: Array(12).fill(1) },
    ],
  }),
  example('text_tokenizer', { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1], data: ['a sentence to tokenize'] }] }),
  {
    name: 'mobilenet_v2',
    async copy(root) {
      await cp(join(SHARED, 'mobilenet_v2', '1'), join(root, 'mobilenet_v2', '1'), { recursive: true });
      await writeFile(join(root, 'mobilenet_v2', 'config.yaml'), 'max_batch_size: 8\nonnx: { intra_op_threads: 2 }\nwarmup: [{ batch_size: 1, count: 1, inputs: { input: random } }]\n');
    },
    body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 3, 224, 224], data: Array(3 * 224 * 224).fill(0.1) }] }),
  },
];

async function repository(model: Model): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'inferd-cold-'));
  await model.copy(root);
  return root;
}

async function lastLoadMs(url: string, name: string): Promise<number> {
  const status = (await (await fetch(`${url}/v2/admin/models/${name}`)).json()) as { last_load_ms?: number };
  return status.last_load_ms ?? Number.NaN;
}

const rows: string[] = [];
for (const model of MODELS) {
  const eagerReady: number[] = [];
  const eagerLoad: number[] = [];
  const lazyReady: number[] = [];
  const lazyFirst: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const eager = await startServer({ model_repository: await repository(model) });
    eagerReady.push(eager.readyAt - eager.spawnedAt);
    eagerLoad.push(await lastLoadMs(eager.url, model.name));
    await eager.stop();

    const lazy = await startServer({ model_repository: await repository(model), models: [{ repository: model.name, load: 'lazy' }] });
    lazyReady.push(lazy.readyAt - lazy.spawnedAt);
    const t = performance.now();
    const r = await post(`${lazy.url}/v2/models/${model.name}/infer`, model.body);
    if (r.status !== 200) throw new Error(`${model.name}: first request answered ${r.status} ${r.text}`);
    lazyFirst.push(performance.now() - t);
    await lazy.stop();
  }
  const row = `| ${model.name} | ${round(median(eagerReady), 0)} | ${round(median(eagerLoad), 0)} | ${round(median(lazyReady), 0)} | ${round(median(lazyFirst), 0)} |`;
  rows.push(row);
  console.log(row);
}

// breast_cancer from a registry alias, eager.
const fromRegistry: number[] = [];
const registryLoad: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const home = await mkdtemp(join(tmpdir(), 'inferd-cold-registry-'));
  const url = `sqlite:${join(home, 'registry.db')}`;
  const registry = await openRegistry(url, { home, actor: 'bench' });
  await registry.register('breast_cancer', join(SHARED, 'breast_cancer', '1', 'model.onnx'));
  await registry.setAlias('breast_cancer', 'champion', 1);
  await registry.close();
  const config = YAML.parse(await readFile(join(EXAMPLES, 'breast_cancer', 'config.yaml'), 'utf8')) as Record<string, unknown>;
  const server = await startServer({
    model_repository: await mkdtemp(join(tmpdir(), 'inferd-cold-empty-')),
    registry: url,
    registry_options: { home },
    models: [{ registry: 'breast_cancer@champion', config }],
  });
  fromRegistry.push(server.readyAt - server.spawnedAt);
  registryLoad.push(await lastLoadMs(server.url, 'breast_cancer'));
  await server.stop();
}
const registryRow = `| breast_cancer@champion (SQLite registry) | ${round(median(fromRegistry), 0)} | ${round(median(registryLoad), 0)} | | |`;
rows.push(registryRow);

console.log(`\ncold start, one model per inferd serve process, medians of ${RUNS} runs (ms):`);
console.log('| model | eager: spawn → ready | eager: model load + warm-up | lazy: spawn → ready | lazy: first request (load + warm-up + infer) |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(row);
