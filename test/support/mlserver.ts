/**
 * MLServer (from the test Python environment) serving shared ONNX models through the custom
 * onnxruntime runtime of bench/peers/mlserver: another Open Inference Protocol server, over
 * HTTP and gRPC, for the suites that check inferd against its peers.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TensorMetadata } from '../../src/core/types.js';
import { REPO_ROOT, SHARED_MODELS } from './paths.js';
import { venvDir } from './python.js';
import { freePort } from './ports.js';

export interface MLServerModel {
  name: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface MLServer {
  /** `http://127.0.0.1:port` */
  url: string;
  /** `grpc://127.0.0.1:port` */
  grpcUrl: string;
  output(): string;
  stop(): Promise<void>;
}

const RUNTIME_DIR = join(REPO_ROOT, 'bench', 'peers', 'mlserver');

/** Starts MLServer with each model's `SHARED_MODELS/<name>/1/model.onnx`; resolves once every model is ready. */
export async function startMLServer(models: MLServerModel[]): Promise<MLServer> {
  const binary = join(venvDir(), 'bin', 'mlserver');
  if (!existsSync(binary)) throw new Error(`MLServer not found at ${binary}: run bash scripts/setup/test-deps.sh (npm test runs it first)`);
  const dir = await mkdtemp(join(tmpdir(), 'inferd-mlserver-'));
  const [httpPort, grpcPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  await writeFile(
    join(dir, 'settings.json'),
    JSON.stringify({ debug: false, parallel_workers: 0, host: '127.0.0.1', http_port: httpPort, grpc_port: grpcPort, metrics_port: metricsPort, load_models_at_startup: true, metrics_dir: join(dir, '.metrics') }),
  );
  for (const model of models) {
    await mkdir(join(dir, model.name));
    await writeFile(
      join(dir, model.name, 'model-settings.json'),
      JSON.stringify({
        name: model.name,
        implementation: 'onnx_runtime.OnnxModel',
        inputs: model.inputs,
        outputs: model.outputs,
        parameters: { uri: join(SHARED_MODELS, model.name, '1', 'model.onnx'), version: '1', extra: { intra_op_threads: 1 } },
      }),
    );
  }
  const child = spawn(binary, ['start', dir], { cwd: dir, env: { ...process.env, PYTHONPATH: RUNTIME_DIR }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${httpPort}`;
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  const started = Date.now();
  for (const model of models) {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`MLServer exited with ${child.exitCode} before it was ready:\n${out}`);
      const ready = await fetch(`${url}/v2/models/${model.name}/ready`).then((r) => r.status === 200, () => false);
      if (ready) break;
      if (Date.now() - started > 60_000) {
        await stop();
        throw new Error(`MLServer did not become ready in 60 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, grpcUrl: `grpc://127.0.0.1:${grpcPort}`, output: () => out, stop };
}
