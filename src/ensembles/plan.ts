/** Checks an ensemble's steps once, at load: every tensor a step reads exists by then, every declared output is produced. */
import { RuntimeError } from '../core/errors.js';
import type { ModelConfig } from '../models/config.js';

export function checkEnsemble(config: ModelConfig): void {
  const spec = config.ensemble;
  if (!spec) return;
  const where = `ensemble '${config.name}'`;
  const known = new Set((config.inputs ?? []).map((t) => t.name));
  spec.steps.forEach((step, i) => {
    if (step.model === config.name) throw new RuntimeError(`${where}: step ${i + 1} calls the ensemble itself`);
    for (const [input, source] of Object.entries(step.inputs)) {
      if (!known.has(source)) {
        throw new RuntimeError(`${where}: step ${i + 1} (${step.model}) reads '${source}' for its input '${input}', but no ensemble input or earlier step output has that name`);
      }
    }
    for (const produced of Object.values(step.outputs)) known.add(produced);
  });
  for (const out of config.outputs ?? []) {
    if (!known.has(out.name)) throw new RuntimeError(`${where}: output '${out.name}' is produced by no step`);
  }
}
