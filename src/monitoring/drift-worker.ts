/** Worker-thread entry of DriftComputePool: one drift computation per task. */
import { computeDrift } from './drift.js';
import type { DriftReport } from './drift.js';
import type { DriftTask } from './pool.js';

export default function run(task: DriftTask): DriftReport {
  return computeDrift(task.profile, task.table, task.options);
}
