/**
 * Drift computation off the event loop: a small piscina pool whose workers run computeDrift.
 * Window columns travel to the worker as transferred buffers (no copy). A profile is cloned to a
 * worker once and then named by id (workers keep the last few), so the main thread does not
 * serialise the reference's samples on every window.
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Table } from './dataset.js';
import type { DriftOptions, DriftReport } from './drift.js';
import type { DriftProfile, ProfileOptions } from './profile.js';

export interface DriftTask {
  profileId: number;
  /** Present when the worker may not have the profile yet. */
  profile?: DriftProfile;
  table: Table;
  options: DriftOptions;
}

export type DriftTaskResult = { report: DriftReport } | { missingProfile: true };

/** Reads a reference data file and profiles it (in the worker: big files take a while). */
export interface ProfileTask {
  kind: 'profile';
  file: string;
  options: ProfileOptions;
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
  private readonly ids = new WeakMap<DriftProfile, number>();
  private nextId = 1;

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

  /**
   * Computes a drift report in a worker thread. The table's numeric column buffers are
   * transferred: the caller must not use them afterwards.
   */
  async compute(profile: DriftProfile, table: Table, options: DriftOptions = {}): Promise<DriftReport> {
    let profileId = this.ids.get(profile);
    const known = profileId !== undefined;
    if (profileId === undefined) {
      profileId = this.nextId++;
      this.ids.set(profile, profileId);
    }
    const transfer: ArrayBuffer[] = [];
    for (const c of table.columns) if (c.kind === 'numeric' && c.values.buffer instanceof ArrayBuffer) transfer.push(c.values.buffer);
    const first = known
      ? ((await this.piscina.run({ profileId, table, options } satisfies DriftTask, { transferList: transfer })) as DriftTaskResult)
      : ({ missingProfile: true } as const);
    if ('report' in first) return first.report;
    // a worker that has not seen this profile (a new one, or a worker started since)
    const retried = (await this.piscina.run({ profileId, profile, table: known ? cloneBack(first, table) : table, options } satisfies DriftTask, known ? {} : { transferList: transfer })) as DriftTaskResult;
    if ('report' in retried) return retried.report;
    throw new Error('the drift worker lost the reference profile');
  }

  /** Reads and profiles a reference data file (CSV or JSONL) in a worker thread. */
  async profileFile(file: string, options: ProfileOptions = {}): Promise<DriftProfile> {
    return (await this.piscina.run({ kind: 'profile', file, options } satisfies ProfileTask)) as DriftProfile;
  }

  async close(): Promise<void> {
    await this.piscina.destroy();
  }
}

/** The worker sends the columns back with a missing-profile answer, since they were transferred. */
function cloneBack(result: DriftTaskResult, table: Table): Table {
  return (result as { table?: Table }).table ?? table;
}
