/**
 * The security tables live in the registry database (same URL, same migrations), so replicas
 * sharing a PostgreSQL registry share keys and one audit chain. Opening through the registry
 * store runs its migrations; the security stores then use the driver directly.
 */
import path from 'node:path';
import { InvalidInputError } from '../core/errors.js';
import { defaultRegistryUrl } from '../registry/open.js';
import type { SqlDriver } from '../registry/sql/driver.js';
import { PostgresDriver, type PostgresOptions } from '../registry/sql/postgres.js';
import { SqliteDriver, type SqliteOptions } from '../registry/sql/sqlite.js';
import { SqlRegistryStore } from '../registry/sql/store.js';

export type Row = Record<string, unknown>;

/** Opens the database a registry URL names, creating or upgrading its schema. */
export async function openSecurityDatabase(url: string = defaultRegistryUrl(), options: SqliteOptions & PostgresOptions = {}): Promise<SqlDriver> {
  let driver: SqlDriver;
  if (url.startsWith('sqlite:')) {
    const rest = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (rest === '') throw new InvalidInputError(`registry URL '${url}' names no file (sqlite:<file>)`);
    driver = await SqliteDriver.open(rest === ':memory:' ? rest : path.resolve(rest), options);
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    driver = new PostgresDriver(url, options);
  } else {
    throw new InvalidInputError(`registry URL '${url}' is neither sqlite:<file> nor postgres://...`);
  }
  // Migrates, and closes the driver itself when that fails.
  await SqlRegistryStore.open(driver);
  return driver;
}

// ---- row decoding shared by the security stores (SQLite numbers, PostgreSQL int8 strings) ----

export function text(row: Row, key: string): string {
  const value = row[key];
  if (typeof value !== 'string') throw new Error(`column ${key} is not text`);
  return value;
}

export function textOrNull(row: Row, key: string): string | null {
  const value = row[key];
  return value === null || value === undefined ? null : String(value);
}

export function num(row: Row, key: string): number {
  const value = row[key];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' || typeof value === 'bigint') return Number(value);
  throw new Error(`column ${key} is not a number`);
}

export function numOrNull(row: Row, key: string): number | null {
  const value = row[key];
  return value === null || value === undefined ? null : num(row, key);
}
