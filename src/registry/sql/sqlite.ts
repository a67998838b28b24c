/**
 * Embedded SQLite through better-sqlite3: the zero-set-up default. WAL lets readers go on while
 * one writer commits; a writer that finds the file locked waits up to busyTimeoutMs, then
 * reports UNAVAILABLE.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferdError } from '../../core/errors.js';
import { storeUnavailable } from '../errors.js';
import { toPositional, type Param, type Queryable, type Row, type SqlDriver } from './driver.js';

export interface SqliteOptions {
  /** How long a write waits for another connection's lock before UNAVAILABLE. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/**
 * SQLite's own busy_timeout waits synchronously and would freeze the event loop for its whole
 * duration; it is kept short and the remainder of the wait is done asynchronously here.
 */
const NATIVE_BUSY_TIMEOUT_MS = 20;

function sqliteCode(error: unknown): string | undefined {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function isBusy(error: unknown): boolean {
  const code = sqliteCode(error);
  return code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/**
 * One queue per database file for the whole process. A transaction body awaits between
 * statements; were a second connection of this process to ask for the write lock meanwhile,
 * its wait would block the thread the first one needs to commit. Queuing them avoids that, and
 * also keeps other callers of the same connection out of an open transaction.
 */
const queues = new Map<string, { tail: Promise<unknown>; users: number }>();

export class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  readonly forUpdate = '';
  readonly label: string;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly queueKey: string;
  private readonly busyTimeoutMs: number;
  private readonly tx: Queryable;
  private closed = false;

  private constructor(file: string, db: Database.Database, busyTimeoutMs: number) {
    this.label = `sqlite:${file}`;
    this.db = db;
    this.busyTimeoutMs = busyTimeoutMs;
    this.queueKey = file === ':memory:' ? `:memory:${Math.random()}` : file;
    const entry = queues.get(this.queueKey) ?? { tail: Promise.resolve(), users: 0 };
    entry.users += 1;
    queues.set(this.queueKey, entry);
    this.tx = {
      all: async (sql, params) => this.guard(() => this.allNow(sql, params ?? [])),
      run: async (sql, params) => this.guard(() => this.runNow(sql, params ?? [])),
    };
  }

  /** Opens (creating the file and its directory) and switches the database to WAL. */
  static async open(file: string, options: SqliteOptions = {}): Promise<SqliteDriver> {
    const label = `sqlite:${file}`;
    const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
    let db: Database.Database;
    try {
      if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
      db = new Database(file, { timeout: Math.min(busyTimeoutMs, NATIVE_BUSY_TIMEOUT_MS) });
    } catch (error) {
      throw translate(label, error);
    }
    const driver = new SqliteDriver(file, db, busyTimeoutMs);
    try {
      await driver.serialize(() =>
        driver.retrying(() => {
          db.pragma('journal_mode = WAL');
          db.pragma('synchronous = NORMAL');
          db.pragma('foreign_keys = ON');
        }),
      );
    } catch (error) {
      await driver.close();
      throw error;
    }
    return driver;
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  private allNow(sql: string, params: Param[]): Row[] {
    const q = toPositional(sql, params);
    const statement = this.statement(q.sql);
    if (!statement.reader) {
      statement.run(...q.params);
      return [];
    }
    return statement.all(...q.params) as Row[];
  }

  private runNow(sql: string, params: Param[]): number {
    const q = toPositional(sql, params);
    return this.statement(q.sql).run(...q.params).changes;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      throw translate(this.label, error);
    }
  }

  /** Runs `fn`, retrying while another connection holds the lock, up to the busy timeout. */
  private async retrying<T>(fn: () => T): Promise<T> {
    const deadline = Date.now() + this.busyTimeoutMs;
    let delay = 5;
    for (;;) {
      try {
        return fn();
      } catch (error) {
        if (!isBusy(error) || Date.now() + delay > deadline) throw translate(this.label, error);
        await sleep(delay);
        delay = Math.min(delay * 2, 100);
      }
    }
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const entry = queues.get(this.queueKey)!;
    const result = entry.tail.then(fn, fn);
    entry.tail = result.catch(() => undefined);
    return result;
  }

  private ensureOpen(): void {
    if (this.closed) throw new InferdError('UNAVAILABLE', `registry store ${this.label} is closed`);
  }

  all(sql: string, params: Param[] = []): Promise<Row[]> {
    return this.serialize(async () => {
      this.ensureOpen();
      return this.retrying(() => this.allNow(sql, params));
    });
  }

  run(sql: string, params: Param[] = []): Promise<number> {
    return this.serialize(async () => {
      this.ensureOpen();
      return this.retrying(() => this.runNow(sql, params));
    });
  }

  /** BEGIN IMMEDIATE takes the write lock up front, so two writers never deadlock upgrading. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.serialize(async () => {
      this.ensureOpen();
      await this.retrying(() => this.db.exec('BEGIN IMMEDIATE'));
      try {
        const result = await fn(this.tx);
        this.guard(() => this.db.exec('COMMIT'));
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  close(): Promise<void> {
    return this.serialize(async () => {
      if (this.closed) return;
      this.closed = true;
      if (this.db.open) this.db.close();
      const entry = queues.get(this.queueKey);
      if (entry !== undefined && --entry.users === 0) queues.delete(this.queueKey);
    });
  }
}

function translate(label: string, error: unknown): unknown {
  if (error instanceof InferdError) return error;
  const code = sqliteCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === undefined) return error;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return storeUnavailable(label, `is locked by another connection (${message}); retry later`, error);
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM')) {
    return storeUnavailable(label, `cannot be opened for writing (${message})`, error);
  }
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_FULL')) {
    return storeUnavailable(label, `failed to read or write its file (${message})`, error);
  }
  if (code.startsWith('SQLITE_NOTADB') || code.startsWith('SQLITE_CORRUPT')) {
    return storeUnavailable(label, `is not a readable SQLite database (${message})`, error);
  }
  return new InferdError('INTERNAL', `registry store ${label}: ${message}`, { cause: error });
}
