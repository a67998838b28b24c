/**
 * What inferd itself saw of each model version: one entry per answered request (time, failed
 * or not, latency) and one per feedback outcome, in bounded rings. Canary analysis reads a time
 * window of it; the analysis endpoint reads the last minutes. Old entries fall off the ring, so
 * memory is bounded whatever the traffic.
 */

export interface WindowSummary {
  requests: number;
  errors: number;
  /** errors / requests; NaN with no requests. */
  errorRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  /** Feedback outcomes in the window and their mean (NaN without any). */
  qualitySamples: number;
  quality: number;
}

/**
 * Requests of other replicas in a window, as their counters give them: counts, and latencies as
 * a histogram of log buckets (each 5% wide, so a percentile read from it is at most 5% high).
 */
export interface PeerWindow {
  requests: number;
  errors: number;
  /** Bucket index -> count. */
  latencies: Map<number, number>;
  qualitySamples: number;
  qualitySum: number;
}

const BUCKET_BASE_MS = 0.01;
const BUCKET_GROWTH = 1.05;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);
const MAX_BUCKET = 600;

/** The histogram bucket of a latency: the smallest i with latency <= 0.01 ms · 1.05^i. */
export function latencyBucket(ms: number): number {
  if (!(ms > BUCKET_BASE_MS)) return 0;
  return Math.min(MAX_BUCKET, Math.ceil(Math.log(ms / BUCKET_BASE_MS) / LOG_GROWTH - 1e-9));
}

/** The latency a bucket stands for: its upper bound. */
export function bucketLatency(bucket: number): number {
  return BUCKET_BASE_MS * BUCKET_GROWTH ** bucket;
}

export function emptyPeerWindow(): PeerWindow {
  return { requests: 0, errors: 0, latencies: new Map(), qualitySamples: 0, qualitySum: 0 };
}

class Ring {
  private readonly times: Float64Array;
  private readonly values: Float64Array;
  private readonly flags: Uint8Array;
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.times = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.flags = new Uint8Array(capacity);
  }

  push(at: number, value: number, flag: number): void {
    this.times[this.next] = at;
    this.values[this.next] = value;
    this.flags[this.next] = flag;
    this.next = (this.next + 1) % this.capacity;
    if (this.size < this.capacity) this.size += 1;
  }

  /** Calls fn for every entry with from <= time < to. */
  each(from: number, to: number, fn: (value: number, flag: number) => void): void {
    for (let i = 0; i < this.size; i++) {
      const at = this.times[i]!;
      if (at >= from && at < to) fn(this.values[i]!, this.flags[i]!);
    }
  }
}

/** Nearest-rank percentiles over this replica's exact latencies and other replicas' histogram buckets together. */
function mergedPercentiles(own: Float64Array, buckets: ReadonlyMap<number, number>): (p: number) => number {
  const peer = [...buckets.entries()].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]).map(([b, n]) => [bucketLatency(b), n] as const);
  const total = own.length + peer.reduce((s, [, n]) => s + n, 0);
  return (p) => {
    if (total === 0) return Number.NaN;
    const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
    let i = 0;
    let j = 0;
    let seen = 0;
    for (;;) {
      const fromOwn = j >= peer.length || (i < own.length && own[i]! <= peer[j]![0]);
      if (fromOwn) {
        seen += 1;
        if (seen >= rank) return own[i]!;
        i += 1;
      } else {
        seen += peer[j]![1];
        if (seen >= rank) return peer[j]![0];
        j += 1;
      }
    }
  };
}

/** Nearest-rank percentile of sorted values (as Prometheus summaries and Argo's web metrics see it). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface ObservationOptions {
  /** Requests kept per version. Default 100,000. */
  requestCapacity?: number;
  /** Feedback outcomes kept per version. Default 20,000. */
  feedbackCapacity?: number;
  now?: () => number;
}

export class VersionObservations {
  private readonly requests = new Map<string, Ring>();
  private readonly feedback = new Map<string, Ring>();
  private readonly requestCapacity: number;
  private readonly feedbackCapacity: number;
  readonly now: () => number;

  constructor(options: ObservationOptions = {}) {
    this.requestCapacity = options.requestCapacity ?? 100_000;
    this.feedbackCapacity = options.feedbackCapacity ?? 20_000;
    this.now = options.now ?? Date.now;
  }

  private ring(map: Map<string, Ring>, model: string, version: string, capacity: number): Ring {
    const key = `${model}\u0000${version}`;
    let ring = map.get(key);
    if (ring === undefined) {
      ring = new Ring(capacity);
      map.set(key, ring);
    }
    return ring;
  }

  /** One answered request. `failed` counts server-side failures only, not the caller's bad input. */
  recordRequest(model: string, version: string, failed: boolean, latencyMs: number, at = this.now()): void {
    // Every request lands here: the ring of the last version seen is kept at hand, so the
    // common case builds no key string.
    let ring = this.lastRequests;
    if (ring === undefined || ring.model !== model || ring.version !== version) {
      ring = { model, version, ring: this.ring(this.requests, model, version, this.requestCapacity) };
      this.lastRequests = ring;
    }
    ring.ring.push(at, latencyMs, failed ? 1 : 0);
  }

  private lastRequests: { model: string; version: string; ring: Ring } | undefined;

  /** One feedback outcome (1/0 for right/wrong, or any number where higher is better). */
  recordOutcome(model: string, version: string, value: number, at = this.now()): void {
    if (!Number.isFinite(value)) return;
    this.ring(this.feedback, model, version, this.feedbackCapacity).push(at, value, 0);
  }

  /** The version's requests and outcomes with from <= time < to, with other replicas' when given. */
  summary(model: string, version: string, from: number, to: number, peers?: PeerWindow): WindowSummary {
    const key = `${model}\u0000${version}`;
    return this.summarise([this.requests.get(key)], [this.feedback.get(key)], from, to, peers);
  }

  /** All versions of the model together (one pod's view, for replica-level canaries). */
  summaryOfModel(model: string, from: number, to: number): WindowSummary {
    const of = (map: Map<string, Ring>) => [...map.entries()].filter(([k]) => k.startsWith(`${model}\u0000`)).map(([, ring]) => ring);
    return this.summarise(of(this.requests), of(this.feedback), from, to);
  }

  private summarise(requestRings: Array<Ring | undefined>, feedbackRings: Array<Ring | undefined>, from: number, to: number, peers?: PeerWindow): WindowSummary {
    const latencies: number[] = [];
    let errors = 0;
    for (const ring of requestRings) {
      ring?.each(from, to, (latency, failed) => {
        latencies.push(latency);
        errors += failed;
      });
    }
    let qualitySum = 0;
    let qualitySamples = 0;
    for (const ring of feedbackRings) {
      ring?.each(from, to, (value) => {
        qualitySum += value;
        qualitySamples += 1;
      });
    }
    const sorted = Float64Array.from(latencies).sort();
    if (peers !== undefined && peers.requests > 0) {
      const requests = latencies.length + peers.requests;
      const errorsAll = errors + peers.errors;
      const samples = qualitySamples + peers.qualitySamples;
      const quantile = mergedPercentiles(sorted, peers.latencies);
      return {
        requests,
        errors: errorsAll,
        errorRate: errorsAll / requests,
        p50Ms: quantile(50),
        p95Ms: quantile(95),
        p99Ms: quantile(99),
        qualitySamples: samples,
        quality: samples === 0 ? Number.NaN : (qualitySum + peers.qualitySum) / samples,
      };
    }
    return {
      requests: latencies.length,
      errors,
      errorRate: latencies.length === 0 ? Number.NaN : errors / latencies.length,
      p50Ms: percentile(sorted, 50),
      p95Ms: percentile(sorted, 95),
      p99Ms: percentile(sorted, 99),
      qualitySamples,
      quality: qualitySamples === 0 ? Number.NaN : qualitySum / qualitySamples,
    };
  }

  /** Forgets a model's versions (policy removed). */
  forget(model: string): void {
    this.lastRequests = undefined;
    for (const map of [this.requests, this.feedback]) {
      for (const key of map.keys()) if (key.startsWith(`${model}\u0000`)) map.delete(key);
    }
  }
}
