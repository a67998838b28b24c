/**
 * Prometheus metrics of traffic management, computed at scrape time from the traffic state (no
 * cost on the request path). Labels are bounded: models and versions from the policies, variant
 * names from the configuration, phases and actions from fixed sets.
 *
 * Alert on `increase(inferd_traffic_canary_rollbacks_total[10m]) > 0`: a canary was rolled back.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { TrafficService } from './service.js';

const PHASES = ['progressing', 'paused', 'promoted', 'rolled_back', 'aborted'] as const;

export function registerTrafficMetrics(registry: Registry, traffic: TrafficService): void {
  const views = () => traffic.modelsWithPolicies().map((m) => traffic.view(m)!);

  new Gauge({
    name: 'inferd_traffic_variant_weight_percent',
    help: 'Share of requests naming no version that a variant receives now.',
    labelNames: ['model', 'variant', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) for (const variant of v.variants) this.set({ model: v.model, variant: variant.name, version: variant.version }, variant.weight);
    },
  });

  new Gauge({
    name: 'inferd_traffic_canary_phase',
    help: 'Phase of each model canary (1 for the current phase).',
    labelNames: ['model', 'phase'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) {
        if (v.canary === undefined) continue;
        for (const phase of PHASES) this.set({ model: v.model, phase }, v.canary.phase === phase ? 1 : 0);
      }
    },
  });

  new Gauge({
    name: 'inferd_traffic_controller_leader',
    help: 'Whether this replica holds the lease that makes it drive canaries (1) or follows the stored state (0).',
    registers: [registry],
    collect() {
      this.set(traffic.controller().leader ? 1 : 0);
    },
  });

  new Counter({
    name: 'inferd_traffic_counters_dropped_total',
    help: 'Seconds of per-version request counters not written for the canary leader (buffer full or database errors).',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(traffic.counters.droppedCounters);
    },
  });

  new Counter({
    name: 'inferd_traffic_events_total',
    help: 'Traffic events by model and action (traffic.set, canary.step, canary.rolled_back, blue_green.switched...).',
    labelNames: ['model', 'action'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of traffic.counters.events) {
        const [model, action] = key.split('\u0000') as [string, string];
        this.inc({ model, action }, count);
      }
    },
  });

  new Counter({
    name: 'inferd_traffic_canary_rollbacks_total',
    help: 'Canaries rolled back automatically by their analysis.',
    labelNames: ['model'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [key, count] of traffic.counters.events) {
        const [model, action] = key.split('\u0000') as [string, string];
        if (action === 'canary.rolled_back') this.inc({ model }, count);
      }
    },
  });

  new Counter({
    name: 'inferd_traffic_assignments_dropped_total',
    help: 'Request-to-variant records not written to the database (buffer full or database down); their feedback cannot be joined.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(traffic.counters.droppedAssignments);
    },
  });

  new Counter({
    name: 'inferd_shadow_requests_total',
    help: 'Mirrored requests by result: completed, error, timeout, dropped (queue full).',
    labelNames: ['model', 'version', 'result'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) {
        const s = v.shadow;
        if (s === undefined) continue;
        const labels = { model: v.model, version: s.version };
        this.inc({ ...labels, result: 'completed' }, s.completed);
        this.inc({ ...labels, result: 'error' }, s.errors);
        this.inc({ ...labels, result: 'timeout' }, s.timeouts);
        this.inc({ ...labels, result: 'dropped' }, s.dropped);
      }
    },
  });

  new Gauge({
    name: 'inferd_shadow_agreement_ratio',
    help: 'Share of label outputs on which the shadow version agrees with the serving one.',
    labelNames: ['model', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) if (v.shadow?.agreementRate != null) this.set({ model: v.model, version: v.shadow.version }, v.shadow.agreementRate);
    },
  });

  new Gauge({
    name: 'inferd_shadow_mean_absolute_error',
    help: 'Mean absolute difference between the shadow version and the serving one over numeric outputs.',
    labelNames: ['model', 'version'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) if (v.shadow?.meanAbsoluteError != null) this.set({ model: v.model, version: v.shadow.version }, v.shadow.meanAbsoluteError);
    },
  });

  new Gauge({
    name: 'inferd_shadow_latency_p99_seconds',
    help: 'p99 latency of mirrored requests side by side: the serving version (role=primary) and the shadow (role=shadow).',
    labelNames: ['model', 'version', 'role'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of views()) {
        const s = v.shadow;
        if (s === undefined) continue;
        if (s.latencyMs.primary.p99 !== null) this.set({ model: v.model, version: s.version, role: 'primary' }, s.latencyMs.primary.p99 / 1000);
        if (s.latencyMs.shadow.p99 !== null) this.set({ model: v.model, version: s.version, role: 'shadow' }, s.latencyMs.shadow.p99 / 1000);
      }
    },
  });
}
