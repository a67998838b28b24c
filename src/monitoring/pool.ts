/**
 * Drift computation off the event loop: a small piscina pool whose workers run computeDrift.
 * Columns travel to the worker as transferred buffers (no copy); the profile is cloned.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Table } from './dataset.js';
import type { DriftOptions, DriftReport } from './drift.js';
import type { DriftProfile } from './profile.js';

export interface DriftTask {
  profile: DriftProfile;
  table: Table;
  options: DriftOptions;
}

function workerEntry(): { filename: string; execArgv: string[] } {
  // Compiled: dist/monitoring/drift-worker.js. From source (tests, tsx): the .ts file through tsx.
  const self = import.meta.url;
  if (self.endsWith('.ts')) return { filename: fileURLToPath(new URL('./drift-worker.ts', self)), execArgv: ['--import', 'tsx'] };
  return { filename: fileURLToPath(new URL('./drift-worker.js', self)), execArgv: [] };
}

export interface DriftPoolOptions {
  /** Worker threads (default 1: drift is periodic, not latency-critical). */
  threads?: number;
  /** Computations waiting for a worker before new ones are refused. */
  maxQueue?: number;
}

export class DriftComputePool {
  private readonly piscina: Piscina;

  constructor(options: DriftPoolOptions = {}) {
    const entry = workerEntry();
    const threads = options.threads ?? 1;
    this.piscina = new Piscina({
      filename: entry.filename,
      execArgv: entry.execArgv,
      minThreads: threads,
      maxThreads: threads,
      maxQueue: options.maxQueue ?? 16,
      idleTimeout: 60_000,
    });
  }

  /** Computes a drift report in a worker thread. */
  async compute(profile: DriftProfile, table: Table, options: DriftOptions = {}): Promise<DriftReport> {
    const transfer: ArrayBuffer[] = [];
    for (const c of table.columns) if (c.kind === 'numeric' && c.values.buffer instanceof ArrayBuffer) transfer.push(c.values.buffer);
    const task: DriftTask = { profile, table, options };
    return (await this.piscina.run(task, { transferList: transfer })) as DriftReport;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}
