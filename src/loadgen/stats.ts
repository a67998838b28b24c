/**
 * Server-side timing from the statistics extension in Triton's shape:
 * `model_stats[0].inference_stats.{success,queue,compute_input,compute_infer,compute_output}.{count,ns}`.
 * Cumulative counters are read at both ends of a window; the delta splits the window's requests
 * into time spent queued and time spent computing.
 */

export interface StatCounter {
  readonly count: number;
  readonly ns: number;
}

export interface InferenceStats {
  readonly success: StatCounter;
  readonly fail: StatCounter;
  readonly queue: StatCounter;
  readonly computeInput: StatCounter;
  readonly computeInfer: StatCounter;
  readonly computeOutput: StatCounter;
}

/** Average server time per successful request over a window, in microseconds. */
export interface ServerSplit {
  readonly requests: number;
  readonly failures: number;
  readonly requestUs: number;
  readonly queueUs: number;
  readonly computeInputUs: number;
  readonly computeInferUs: number;
  readonly computeOutputUs: number;
  /** computeInput + computeInfer + computeOutput. */
  readonly computeUs: number;
}

export interface StatsSource {
  fetch(): Promise<InferenceStats | undefined>;
  close(): void;
}

function rec(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
}

function counter(v: unknown): StatCounter {
  const r = rec(v);
  // gRPC longs arrive as strings; JSON as numbers.
  return { count: Number(r?.['count'] ?? 0) || 0, ns: Number(r?.['ns'] ?? 0) || 0 };
}

/** Reads the first model's inference statistics, or undefined when the document has none. */
export function parseStats(doc: unknown): InferenceStats | undefined {
  const list = rec(doc)?.['model_stats'];
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const s = rec(rec(list[0])?.['inference_stats']);
  if (!s) return undefined;
  return {
    success: counter(s['success']),
    fail: counter(s['fail']),
    queue: counter(s['queue']),
    computeInput: counter(s['compute_input']),
    computeInfer: counter(s['compute_infer']),
    computeOutput: counter(s['compute_output']),
  };
}

const per = (dNs: number, n: number): number => (n > 0 ? Math.round(dNs / n / 1000) : 0);

/** The split over the window between two readings; undefined if no request completed in between. */
export function statsDelta(before: InferenceStats, after: InferenceStats): ServerSplit | undefined {
  const n = after.success.count - before.success.count;
  if (n <= 0) return undefined;
  const d = (k: keyof InferenceStats): number => after[k].ns - before[k].ns;
  const computeInputUs = per(d('computeInput'), n);
  const computeInferUs = per(d('computeInfer'), n);
  const computeOutputUs = per(d('computeOutput'), n);
  return {
    requests: n,
    failures: Math.max(0, after.fail.count - before.fail.count),
    requestUs: per(d('success'), n),
    queueUs: per(d('queue'), n),
    computeInputUs,
    computeInferUs,
    computeOutputUs,
    computeUs: computeInputUs + computeInferUs + computeOutputUs,
  };
}

/** Combines per-window splits into one, weighted by request count. */
export function mergeSplits(parts: readonly (ServerSplit | undefined)[]): ServerSplit | undefined {
  const xs = parts.filter((p): p is ServerSplit => p !== undefined);
  if (xs.length === 0) return undefined;
  const n = xs.reduce((a, p) => a + p.requests, 0);
  const avg = (k: keyof ServerSplit): number => Math.round(xs.reduce((a, p) => a + p[k] * p.requests, 0) / n);
  return {
    requests: n,
    failures: xs.reduce((a, p) => a + p.failures, 0),
    requestUs: avg('requestUs'),
    queueUs: avg('queueUs'),
    computeInputUs: avg('computeInputUs'),
    computeInferUs: avg('computeInferUs'),
    computeOutputUs: avg('computeOutputUs'),
    computeUs: avg('computeUs'),
  };
}

/** Statistics over HTTP: `GET {base}/v2/models/{m}[/versions/{v}]/stats`. */
export function httpStatsSource(baseUrl: string, model: string, version: string | undefined, headers: Readonly<Record<string, string>> = {}): StatsSource {
  const url = `${baseUrl.replace(/\/+$/, '')}/v2/models/${encodeURIComponent(model)}${
    version ? `/versions/${encodeURIComponent(version)}` : ''
  }/stats`;
  return {
    fetch: async () => {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      return parseStats(await res.json());
    },
    close: () => {},
  };
}
