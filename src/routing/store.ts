/**
 * Traffic state in the registry's database (SQLite or PostgreSQL, one SqlDriver): each model's
 * policy and canary / blue-green state with a revision for compare-and-set, the traffic events,
 * which variant served a request, and the feedback outcomes. A restart or a second replica
 * reads the same policy from here.
 */
import { InferdError } from '../core/errors.js';
import type { Registry } from '../registry/registry.js';
import type { Param, Row, SqlDriver } from '../registry/sql/driver.js';
import { SqlRegistryStore } from '../registry/sql/store.js';
import type { TrafficConfig } from './config.js';

export interface StoredTraffic {
  model: string;
  policy: TrafficConfig;
  state: Record<string, unknown>;
  revision: number;
  updatedAt: number;
  updatedBy: string;
}

export interface TrafficEventRecord {
  id: number;
  at: number;
  model: string;
  action: string;
  actor: string;
  details: Record<string, unknown>;
}

export interface Assignment {
  requestId: string;
  model: string;
  version: string;
  variant: string;
  at: number;
}

export interface FeedbackRecord extends Assignment {
  outcome: number | null;
  label: string | null;
  /** When the feedback arrived. */
  receivedAt: number;
}

/** Per-variant aggregates of a model's feedback: what the experiment statistics need. */
export interface VariantOutcomes {
  variant: string;
  version: string;
  /** Requests the variant served (assignments recorded). */
  served: number;
  /** Feedback records with a numeric outcome, their sum and sum of squares. */
  outcomes: number;
  sum: number;
  sumOfSquares: number;
  /** Feedback labels and how often each came. */
  labels: Record<string, number>;
}

/** One replica's requests of one model version in one second: what the canary leader aggregates. */
export interface CounterRow {
  model: string;
  version: string;
  replica: string;
  /** Start of the second, epoch ms. */
  secondMs: number;
  requests: number;
  errors: number;
  /** Latency histogram: log-bucket index -> count (see observations.ts latencyBucket). */
  latencies: Record<string, number>;
  qualityN: number;
  qualitySum: number;
}

export interface LeaseHolder {
  holder: string;
  expiresAt: number;
  acquiredAt: number;
}

/** Variant × label counts read for a report at most (a categorical test takes 100 labels). */
const MAX_LABEL_ROWS = 10_000;

export class TrafficConflictError extends InferdError {
  constructor(
    model: string,
    readonly current: number,
  ) {
    super('FAILED_PRECONDITION', `the traffic policy of model '${model}' changed meanwhile (revision ${current}); read it again and retry`);
  }
}

function num(row: Row, key: string): number {
  const value = row[key];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' || typeof value === 'bigint') return Number(value);
  throw new InferdError('INTERNAL', `traffic column ${key} is not a number`);
}

function text(row: Row, key: string): string {
  const value = row[key];
  if (typeof value !== 'string') throw new InferdError('INTERNAL', `traffic column ${key} is not text`);
  return value;
}

function parsed<T>(row: Row, key: string): T {
  return JSON.parse(text(row, key)) as T;
}

export class TrafficStore {
  constructor(private readonly db: SqlDriver) {}

  /** The traffic store of an open registry (same database, same connection). */
  static fromRegistry(registry: Registry): TrafficStore {
    if (!(registry.store instanceof SqlRegistryStore)) throw new InferdError('FAILED_PRECONDITION', 'the registry store keeps no traffic state');
    return new TrafficStore(registry.store.driver);
  }

  get label(): string {
    return this.db.label;
  }

  private static decode(row: Row): StoredTraffic {
    return {
      model: text(row, 'model'),
      policy: parsed<TrafficConfig>(row, 'policy'),
      state: parsed<Record<string, unknown>>(row, 'state'),
      revision: num(row, 'revision'),
      updatedAt: num(row, 'updated_at_ms'),
      updatedBy: text(row, 'updated_by'),
    };
  }

  async load(model: string): Promise<StoredTraffic | undefined> {
    const rows = await this.db.all('SELECT * FROM traffic_policies WHERE model = $1', [model]);
    return rows[0] === undefined ? undefined : TrafficStore.decode(rows[0]);
  }

  async loadAll(): Promise<StoredTraffic[]> {
    return (await this.db.all('SELECT * FROM traffic_policies ORDER BY model')).map((r) => TrafficStore.decode(r));
  }

  /** model -> revision, cheap enough to poll. */
  async revisions(): Promise<Map<string, number>> {
    const rows = await this.db.all('SELECT model, revision FROM traffic_policies');
    return new Map(rows.map((r) => [text(r, 'model'), num(r, 'revision')]));
  }

  /**
   * Writes a model's policy and state. `expected` is the revision the writer read (0: none yet);
   * a different current revision throws TrafficConflictError. Returns the new revision.
   */
  async save(model: string, policy: TrafficConfig, state: Record<string, unknown>, expected: number | undefined, actor: string, at = Date.now()): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.all(`SELECT revision FROM traffic_policies WHERE model = $1${this.db.forUpdate}`, [model]);
      const current = rows[0] === undefined ? 0 : num(rows[0], 'revision');
      if (expected !== undefined && expected !== current) throw new TrafficConflictError(model, current);
      const revision = current + 1;
      const params: Param[] = [model, JSON.stringify(policy), JSON.stringify(state), revision, at, actor];
      if (current === 0) {
        await tx.run('INSERT INTO traffic_policies (model, policy, state, revision, updated_at_ms, updated_by) VALUES ($1, $2, $3, $4, $5, $6)', params);
      } else {
        await tx.run('UPDATE traffic_policies SET policy = $2, state = $3, revision = $4, updated_at_ms = $5, updated_by = $6 WHERE model = $1', params);
      }
      return revision;
    });
  }

  async remove(model: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM traffic_policies WHERE model = $1', [model])) > 0;
  }

  /** Events are written one after another, so their ids follow the order they happened in. */
  private eventChain: Promise<unknown> = Promise.resolve();

  appendEvent(model: string, action: string, actor: string, details: Record<string, unknown>, at = Date.now()): Promise<void> {
    const write = this.eventChain.then(() =>
      this.db.run('INSERT INTO traffic_events (at_ms, model, action, actor, details) VALUES ($1, $2, $3, $4, $5)', [at, model, action, actor, JSON.stringify(details)]),
    );
    this.eventChain = write.catch(() => undefined);
    return write.then(() => undefined);
  }

  async events(model: string, limit = 50): Promise<TrafficEventRecord[]> {
    await this.eventChain;
    const rows = await this.db.all('SELECT * FROM traffic_events WHERE model = $1 ORDER BY id DESC LIMIT $2', [model, Math.max(1, Math.min(limit, 1000))]);
    return rows.reverse().map((r) => ({
      id: num(r, 'id'),
      at: num(r, 'at_ms'),
      model: text(r, 'model'),
      action: text(r, 'action'),
      actor: text(r, 'actor'),
      details: parsed<Record<string, unknown>>(r, 'details'),
    }));
  }

  /**
   * Records which variant served which request; a request id seen again keeps its first row.
   * Multi-row inserts of a few fixed sizes, so a batch is a few statements, not one per row.
   */
  async recordAssignments(assignments: readonly Assignment[]): Promise<void> {
    if (assignments.length === 0) return;
    await this.db.transaction(async (tx) => {
      let at = 0;
      while (at < assignments.length) {
        const left = assignments.length - at;
        const size = left >= 128 ? 128 : left >= 16 ? 16 : 1;
        const params: Param[] = [];
        const rows: string[] = [];
        for (const a of assignments.slice(at, at + size)) {
          const n = params.length;
          rows.push(`($${n + 1}, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5})`);
          params.push(a.requestId, a.model, a.version, a.variant, a.at);
        }
        await tx.run(`INSERT INTO traffic_assignments (request_id, model, version, variant, at_ms) VALUES ${rows.join(', ')} ON CONFLICT (request_id) DO NOTHING`, params);
        at += size;
      }
    });
  }

  async assignment(requestId: string): Promise<Assignment | undefined> {
    const rows = await this.db.all('SELECT * FROM traffic_assignments WHERE request_id = $1', [requestId]);
    const r = rows[0];
    if (r === undefined) return undefined;
    return { requestId: text(r, 'request_id'), model: text(r, 'model'), version: text(r, 'version'), variant: text(r, 'variant'), at: num(r, 'at_ms') };
  }

  /** When the model's first recorded assignment was served (an experiment's start when no policy change recorded it). */
  async firstAssignmentAt(model: string): Promise<number | null> {
    const rows = await this.db.all('SELECT MIN(at_ms) AS first FROM traffic_assignments WHERE model = $1', [model]);
    const first = rows[0]?.['first'];
    return first === null || first === undefined ? null : Number(first);
  }

  /** Stores a feedback outcome; a later one for the same request replaces it. */
  async recordFeedback(feedback: FeedbackRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO traffic_feedback (request_id, model, version, variant, outcome, label, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (request_id) DO UPDATE SET outcome = excluded.outcome, label = excluded.label, at_ms = excluded.at_ms`,
      [feedback.requestId, feedback.model, feedback.version, feedback.variant, feedback.outcome, feedback.label, feedback.receivedAt],
    );
  }

  async feedback(requestId: string): Promise<FeedbackRecord | undefined> {
    const rows = await this.db.all(
      'SELECT f.*, a.at_ms AS served_at_ms FROM traffic_feedback f LEFT JOIN traffic_assignments a ON a.request_id = f.request_id WHERE f.request_id = $1',
      [requestId],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    const outcome = r['outcome'];
    const label = r['label'];
    return {
      requestId: text(r, 'request_id'),
      model: text(r, 'model'),
      version: text(r, 'version'),
      variant: text(r, 'variant'),
      at: r['served_at_ms'] === null || r['served_at_ms'] === undefined ? num(r, 'at_ms') : num(r, 'served_at_ms'),
      outcome: outcome === null || outcome === undefined ? null : Number(outcome),
      label: typeof label === 'string' ? label : null,
      receivedAt: num(r, 'at_ms'),
    };
  }

  /**
   * Takes or renews the lease `name` for `holder` until now + ttl: granted when nobody holds it,
   * the holder already does, or the current one's expiry has passed. One statement, so two
   * replicas racing for it cannot both win (SQLite serialises writers; PostgreSQL re-checks the
   * condition on the row it waited for). Returns whether `holder` holds it now.
   */
  async acquireLease(name: string, holder: string, now: number, ttlMs: number): Promise<boolean> {
    const changed = await this.db.run(
      `INSERT INTO traffic_leases (name, holder, expires_at_ms, acquired_at_ms) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at_ms = excluded.expires_at_ms,
         acquired_at_ms = CASE WHEN traffic_leases.holder = excluded.holder THEN traffic_leases.acquired_at_ms ELSE excluded.acquired_at_ms END
       WHERE traffic_leases.holder = excluded.holder OR traffic_leases.expires_at_ms <= excluded.acquired_at_ms`,
      [name, holder, now + ttlMs, now],
    );
    return changed > 0;
  }

  /** Gives the lease up (a replica shutting down), so another takes over without waiting for the expiry. */
  async releaseLease(name: string, holder: string): Promise<void> {
    await this.db.run('DELETE FROM traffic_leases WHERE name = $1 AND holder = $2', [name, holder]);
  }

  async leaseHolder(name: string): Promise<LeaseHolder | undefined> {
    const rows = await this.db.all('SELECT holder, expires_at_ms, acquired_at_ms FROM traffic_leases WHERE name = $1', [name]);
    const r = rows[0];
    return r === undefined ? undefined : { holder: text(r, 'holder'), expiresAt: num(r, 'expires_at_ms'), acquiredAt: num(r, 'acquired_at_ms') };
  }

  /** Writes a replica's finished seconds of counters; a second already written is kept as it was. */
  async writeCounters(rows: readonly CounterRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (let at = 0; at < rows.length; at += 64) {
        const params: Param[] = [];
        const values: string[] = [];
        for (const c of rows.slice(at, at + 64)) {
          const n = params.length;
          values.push(`(${Array.from({ length: 9 }, (_, i) => `$${n + i + 1}`).join(', ')})`);
          params.push(c.model, c.version, c.replica, c.secondMs, c.requests, c.errors, JSON.stringify(c.latencies), c.qualityN, c.qualitySum);
        }
        await tx.run(
          `INSERT INTO traffic_counters (model, version, replica, second_ms, requests, errors, latencies, quality_n, quality_sum) VALUES ${values.join(', ')}
           ON CONFLICT (model, version, replica, second_ms) DO NOTHING`,
          params,
        );
      }
    });
  }

  /** The model's counters of seconds from <= second < to, of every replica but `except`. */
  async counters(model: string, from: number, to: number, except: string): Promise<CounterRow[]> {
    const rows = await this.db.all('SELECT * FROM traffic_counters WHERE model = $1 AND second_ms >= $2 AND second_ms < $3 AND replica <> $4', [model, from, to, except]);
    return rows.map((r) => ({
      model: text(r, 'model'),
      version: text(r, 'version'),
      replica: text(r, 'replica'),
      secondMs: num(r, 'second_ms'),
      requests: num(r, 'requests'),
      errors: num(r, 'errors'),
      latencies: parsed<Record<string, number>>(r, 'latencies'),
      qualityN: num(r, 'quality_n'),
      qualitySum: num(r, 'quality_sum'),
    }));
  }

  /** Forgets counters older than `before` (they only serve analysis windows). */
  async pruneCounters(before: number): Promise<number> {
    return this.db.run('DELETE FROM traffic_counters WHERE second_ms < $1', [before]);
  }

  /** Per-variant counts of a model's traffic and feedback since `since` (epoch ms). */
  async outcomes(model: string, since = 0): Promise<VariantOutcomes[]> {
    const byVariant = new Map<string, VariantOutcomes>();
    const entry = (variant: string, version: string): VariantOutcomes => {
      let e = byVariant.get(variant);
      if (e === undefined) {
        e = { variant, version, served: 0, outcomes: 0, sum: 0, sumOfSquares: 0, labels: Object.create(null) as Record<string, number> };
        byVariant.set(variant, e);
      }
      return e;
    };
    const served = await this.db.all(
      'SELECT variant, MAX(version) AS version, COUNT(*) AS n FROM traffic_assignments WHERE model = $1 AND at_ms >= $2 GROUP BY variant',
      [model, since],
    );
    for (const r of served) entry(text(r, 'variant'), text(r, 'version')).served = num(r, 'n');
    const numeric = await this.db.all(
      `SELECT variant, MAX(version) AS version, COUNT(outcome) AS n, COALESCE(SUM(outcome), 0) AS s, COALESCE(SUM(outcome * outcome), 0) AS ss
       FROM traffic_feedback WHERE model = $1 AND at_ms >= $2 GROUP BY variant`,
      [model, since],
    );
    for (const r of numeric) {
      const e = entry(text(r, 'variant'), text(r, 'version'));
      e.outcomes = num(r, 'n');
      e.sum = num(r, 's');
      e.sumOfSquares = num(r, 'ss');
    }
    const labels = await this.db.all(
      // Bounded: labels that are free text rather than categories must not flood the report.
      `SELECT variant, MAX(version) AS version, label, COUNT(*) AS n FROM traffic_feedback WHERE model = $1 AND at_ms >= $2 AND label IS NOT NULL
       GROUP BY variant, label ORDER BY n DESC, variant, label LIMIT ${MAX_LABEL_ROWS}`,
      [model, since],
    );
    for (const r of labels) entry(text(r, 'variant'), text(r, 'version')).labels[text(r, 'label')] = num(r, 'n');
    return [...byVariant.values()].sort((a, b) => a.variant.localeCompare(b.variant));
  }
}
