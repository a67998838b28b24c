/**
 * PostgreSQL through a pg Pool, for several server replicas sharing one registry. Writers of
 * one model serialise on that model's row (SELECT ... FOR UPDATE).
 */
import pg from 'pg';
import { InferdError } from '../../core/errors.js';
import { storeUnavailable } from '../errors.js';
import type { Param, Queryable, Row, SqlDriver } from './driver.js';

export interface PostgresOptions {
  /** Give up connecting after this long. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** Longest a statement (including a lock wait) may take. Default 30000 ms. */
  statementTimeoutMs?: number;
  /** Pool size. Default 4: registry traffic is light. */
  maxConnections?: number;
}

/** The URL without its password, fit for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'postgres://(unparsable url)';
  }
}

// SQLSTATE classes and codes that mean "the database cannot answer now", not "your query is wrong".
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '55P03', '40001', '40P01', '3D000']);

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** Socket errors (ECONNREFUSED...) and pg's own words for a lost or never-made connection. */
function isConnectionFailure(error: unknown): boolean {
  if (sqlState(error) !== undefined || !(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return /connect|terminat|timeout|socket|not queryable|ended/i.test(error.message);
}

export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly forUpdate = ' FOR UPDATE';
  readonly label: string;
  private readonly pool: pg.Pool;
  private closed = false;

  constructor(url: string, options: PostgresOptions = {}) {
    this.label = redactUrl(url);
    this.pool = new pg.Pool({
      connectionString: url,
      max: options.maxConnections ?? 4,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
      statement_timeout: options.statementTimeoutMs ?? 30_000,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
      application_name: 'inferd-registry',
    });
    // An idle client whose server went away emits 'error' on the pool; unhandled, it would
    // crash the process. The next query reconnects or reports UNAVAILABLE.
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (client) => client.on('error', () => undefined));
  }

  private async withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new InferdError('UNAVAILABLE', `registry store ${this.label} is closed`);
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw this.translate(error);
    }
    let broken: Error | undefined;
    try {
      return await fn(client);
    } catch (error) {
      if (isConnectionFailure(error)) broken = error as Error;
      throw this.translate(error);
    } finally {
      client.release(broken);
    }
  }

  private static queryable(client: pg.PoolClient): Queryable {
    return {
      all: async (sql, params) => (await client.query(sql, params ?? [])).rows as Row[],
      run: async (sql, params) => (await client.query(sql, params ?? [])).rowCount ?? 0,
    };
  }

  all(sql: string, params: Param[] = []): Promise<Row[]> {
    return this.withClient(async (client) => (await client.query(sql, params)).rows as Row[]);
  }

  run(sql: string, params: Param[] = []): Promise<number> {
    return this.withClient(async (client) => (await client.query(sql, params)).rowCount ?? 0);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.withClient(async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn(PostgresDriver.queryable(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private translate(error: unknown): unknown {
    if (error instanceof InferdError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const state = sqlState(error);
    if (isConnectionFailure(error)) {
      const code = (error as { code?: unknown }).code;
      const known = typeof code === 'string' ? code : undefined;
      // Node's AggregateError for a refused dual-stack connect has a code and an empty message.
      const detail = message === '' ? (known ?? 'connection failed') : known !== undefined && !message.includes(known) ? `${known}: ${message}` : message;
      return storeUnavailable(this.label, `is unreachable (${detail})`, error);
    }
    if (state === undefined) return error;
    if (state.startsWith('08') || state.startsWith('28') || UNAVAILABLE_STATES.has(state)) {
      return storeUnavailable(this.label, `cannot answer now (${state}: ${message})`, error);
    }
    return new InferdError('INTERNAL', `registry store ${this.label}: ${state}: ${message}`, { cause: error });
  }
}
