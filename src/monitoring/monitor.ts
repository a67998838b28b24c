/**
 * One model version's drift monitoring, put together: a window fed by the capture policy, the
 * judging in the worker pool when a window closes, metrics, the latest report (for an admin
 * endpoint), and the triggers. The capture policy's only calls are `observe` (per served row or
 * batch; cheap and synchronous, never throws for a full window) and `tick` (from a timer, so a
 * time-based window closes when traffic stops).
 *
 * At most one window is judged at a time per version; a window that closes while the previous one
 * is still being judged is dropped and counted, so a slow worker never builds a backlog.
 */
import type { DriftReport, DriftOptions } from './drift.js';
import type { DriftMetrics } from './metrics.js';
import type { DriftComputePool } from './pool.js';
import type { DriftProfile } from './profile.js';
import { DriftTrigger, type ActionOutcome, type TriggerAction } from './triggers.js';
import { DriftWindow, type ClosedWindow, type DriftWindowOptions } from './window.js';
import type { Severity } from './decision.js';
import type { Tensor } from '../core/types.js';
import { outputColumnsOf } from './outputs.js';

export interface DriftMonitorOptions {
  model: string;
  version: number;
  profile: DriftProfile;
  pool: DriftComputePool;
  window: Omit<DriftWindowOptions, 'inputs' | 'outputs' | 'onClose'>;
  /** Output columns of the profile, in the order `observe` receives output values. */
  outputs?: readonly string[];
  options?: DriftOptions;
  actions?: readonly TriggerAction[];
  minSeverity?: Severity;
  metrics?: Pick<DriftMetrics, 'record' | 'recordActions' | 'windowDropped'>;
  /** Called with every report and the actions it fired (for an event log). */
  onReport?: (report: DriftReport, actions: ActionOutcome[] | undefined) => void;
  onError?: (error: Error) => void;
}

export class DriftMonitor {
  readonly window: DriftWindow;
  private latestReport: DriftReport | undefined;
  private latestWindow: Omit<ClosedWindow, 'table'> | undefined;
  private judgedWindows = 0;
  private judging: Promise<void> | undefined;
  private droppedWindows = 0;
  private readonly trigger: DriftTrigger | undefined;

  constructor(private readonly o: DriftMonitorOptions) {
    const inputs = o.profile.columns.filter((c) => c.role === 'input').map((c) => c.name);
    const outputs = o.outputs ?? o.profile.columns.filter((c) => c.role === 'output').map((c) => c.name);
    this.window = new DriftWindow({ ...o.window, inputs, outputs, onClose: (w) => this.judge(w) });
    this.trigger = o.actions && o.actions.length > 0
      ? new DriftTrigger({ actions: o.actions, model: o.model, version: o.version, ...(o.minSeverity ? { minSeverity: o.minSeverity } : {}) })
      : undefined;
  }

  /** One served row (or a row-major batch when `inputs` holds several rows). */
  observe(inputs: ArrayLike<number>, outputs?: ArrayLike<number>): void {
    if (inputs.length === this.window.inputs.length) this.window.add(inputs, outputs);
    else this.window.addBatch(inputs, outputs);
  }

  /**
   * One served (possibly batched) response: the input tensor the profile's features describe and
   * the output tensors, whose derived columns (outputs.ts) are matched to the profile by name;
   * an output the response lacks is recorded as missing.
   */
  observeResponse(input: Tensor, outputs: readonly Tensor[]): void {
    const raw = input.data;
    if (Array.isArray(raw) || !ArrayBuffer.isView(raw)) return; // text inputs have no numeric drift
    const data: ArrayLike<number> =
      raw instanceof BigInt64Array || raw instanceof BigUint64Array ? Float64Array.from(raw, Number) : (raw as ArrayLike<number>);
    const wanted = this.window.outputs;
    if (wanted.length === 0) {
      // one row (the usual online request) goes in without a batch's per-row views
      if (data.length === this.window.inputs.length) this.window.add(data);
      else this.window.addBatch(data);
      return;
    }
    const derived = outputColumnsOf(outputs);
    const index = wanted.map((name) => derived.names.indexOf(name));
    const rows = data.length / this.window.inputs.length;
    const values = new Float64Array(rows * wanted.length);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < wanted.length; k++) {
        const at = index[k]!;
        values[r * wanted.length + k] = at < 0 || r >= derived.rows ? Number.NaN : derived.values[r * derived.names.length + at]!;
      }
    }
    this.window.addBatch(data, values);
  }

  /** Closes a window whose time is up; call it from a timer. */
  tick(): void {
    this.window.tick();
  }

  /** The last judged window's report. */
  get report(): DriftReport | undefined {
    return this.latestReport;
  }

  /** The window the last report judged: rows seen and kept, start, end, why it closed. */
  get reportWindow(): Omit<ClosedWindow, 'table'> | undefined {
    return this.latestWindow;
  }

  /** Windows judged so far. */
  get judged(): number {
    return this.judgedWindows;
  }

  /** Windows dropped because the previous one was still being judged. */
  get dropped(): number {
    return this.droppedWindows;
  }

  /** Resolves when the window being judged (if any) is done. */
  async idle(): Promise<void> {
    await this.judging;
  }

  private judge(window: ClosedWindow): void {
    if (this.judging) {
      this.droppedWindows++;
      this.o.metrics?.windowDropped(this.o.model, String(this.o.version));
      return;
    }
    this.judging = this.run(window).finally(() => {
      this.judging = undefined;
    });
  }

  private async run(window: ClosedWindow): Promise<void> {
    try {
      const report = await this.o.pool.compute(this.o.profile, window.table, this.o.options ?? {});
      this.latestReport = report;
      this.latestWindow = { seen: window.seen, kept: window.kept, startedAt: window.startedAt, endedAt: window.endedAt, reason: window.reason };
      this.judgedWindows++;
      this.o.metrics?.record(this.o.model, String(this.o.version), report);
      const outcomes = await this.trigger?.consider(report);
      if (outcomes) this.o.metrics?.recordActions(this.o.model, String(this.o.version), outcomes);
      this.o.onReport?.(report, outcomes);
    } catch (error) {
      this.o.onError?.(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
