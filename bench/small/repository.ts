/** The model repository the small-request benches serve: breast_cancer alone, with or without dynamic batching. */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Writes the repository into `dir` (created), its model linked from `modelsDir`; returns `dir`. */
export function breastCancerRepository(dir: string, modelsDir: string, batching: boolean): string {
  mkdirSync(join(dir, 'breast_cancer', '1'), { recursive: true });
  symlinkSync(resolve(modelsDir, 'breast_cancer', '1', 'model.onnx'), join(dir, 'breast_cancer', '1', 'model.onnx'));
  writeFileSync(
    join(dir, 'breast_cancer', 'config.yaml'),
    [
      'runtime: onnx',
      'max_batch_size: 64',
      'instances: 1',
      'onnx: { intra_op_threads: 1, inter_op_threads: 1 }',
      'inputs: [{ name: features, datatype: FP32, shape: [-1, 30] }]',
      'outputs: [{ name: probabilities, datatype: FP32, shape: [-1, 2] }, { name: label, datatype: INT64, shape: [-1] }]',
      batching ? 'dynamic_batching: { max_queue_delay_microseconds: 0 }' : '',
      'queue: { max_size: 4096 }',
      '',
    ].join('\n'),
  );
  return dir;
}
