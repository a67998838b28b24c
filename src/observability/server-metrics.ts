/**
 * Connects the data plane, the schedulers and the front doors to the Metrics registry. Labels
 * stay bounded: a model name appears only once the model has resolved to a loaded version, so
 * requests for unknown models cannot grow the series count.
 */
import type { RequestObserver } from '../core/dataplane.js';
import { toInferdError, type FailureReason } from '../core/errors.js';
import type { InferenceObserver } from '../models/model-version.js';
import type { Metrics } from './metrics.js';

/** Failures that are the server's doing count against the error SLO; a caller's mistakes do not. */
const SERVER_SIDE: ReadonlySet<FailureReason> = new Set(['rejected', 'timeout', 'runtime_error', 'unavailable', 'internal']);

export function requestObserver(metrics: Metrics): RequestObserver {
  return {
    onInferStart(_context, model) {
      metrics.addInFlight(model, 1);
    },
    onInferDone(context, model, version, _result, error, durationNs) {
      if (version === '') return; // never resolved: no model label to record under
      metrics.addInFlight(model, -1);
      const protocol = context.protocol;
      if (error === undefined) {
        metrics.observeInference(model, version, protocol, durationNs / 1e9, 'success');
        return;
      }
      const reason = toInferdError(error).reason;
      metrics.recordFailure(model, version, reason);
      metrics.observeInference(model, version, protocol, durationNs / 1e9, SERVER_SIDE.has(reason) ? 'error' : 'success');
    },
  };
}

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
