/**
 * The little a registry store needs from a SQL database, so that one implementation of the
 * registry logic (store.ts) runs on SQLite and on PostgreSQL. SQL is written with PostgreSQL's
 * `$1` placeholders; the SQLite driver rewrites them.
 */
export type Row = Record<string, unknown>;
export type Param = string | number | null;

export interface Queryable {
  all(sql: string, params?: Param[]): Promise<Row[]>;
  /** Returns the number of rows changed. */
  run(sql: string, params?: Param[]): Promise<number>;
}

export interface SqlDriver extends Queryable {
  readonly kind: 'sqlite' | 'postgres';
  readonly label: string;
  /** ` FOR UPDATE` where row locks exist; SQLite's write transactions lock the whole file instead. */
  readonly forUpdate: string;
  /** Runs `fn` in a write transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Rewrites `$n` placeholders into positional `?` and reorders the parameters to match. */
export function toPositional(sql: string, params: Param[]): { sql: string; params: Param[] } {
  const ordered: Param[] = [];
  const text = sql.replace(/\$([0-9]+)/g, (_, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= params.length) throw new RangeError(`placeholder $${n} has no parameter`);
    ordered.push(params[index]!);
    return '?';
  });
  return { sql: text, params: ordered };
}
