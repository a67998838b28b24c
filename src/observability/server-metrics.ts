/**
 * Connects the model versions and their schedulers to the Metrics registry (request-level
 * metrics are recorded by the pipeline's observe policy). Labels stay bounded: a version's
 * series exist while it is loaded.
 */
import type { InferenceObserver } from '../models/model-version.js';
import type { Metrics } from './metrics.js';

export function inferenceObserver(metrics: Metrics): InferenceObserver {
  return {
    onLoaded(v) {
      metrics.registerModelVersion(v.name, v.version, { platform: v.config.runtime });
    },
    onUnloaded(v) {
      metrics.removeModelVersion(v.name, v.version);
    },
    onExecution(model, version, record, outputs) {
      const m = metrics.forVersion(model, version);
      m.batchSize(record.batchRows);
      m.queueSize(record.queued);
      const t = record.timings;
      m.computeTime((t.inputNs + t.inferNs + t.outputNs) / 1e9);
      for (const ns of record.queueNs) m.queueTime(ns / 1e9);
      m.predictions(outputs);
    },
    onOutOfRange(model, version, feature, count) {
      metrics.recordOutOfRange(model, version, feature, count);
    },
    onQueueRejected(model, version, reason) {
      metrics.recordFailure(model, version, reason === 'timeout' ? 'timeout' : reason === 'cancelled' ? 'cancelled' : 'rejected');
    },
  };
}
