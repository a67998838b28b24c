/**
 * What `inferd keys` and `inferd audit` share: reading the server configuration (for the
 * registry URL and the secrets it names), opening the registry database, output helpers, and
 * the same exit statuses as `inferd models` (1: the operation failed, 2: bad command line).
 */
import type { Command } from 'commander';
import os from 'node:os';
import { loadConfig } from '../config/load.js';
import { InferdError } from '../core/errors.js';
import { defaultRegistryUrl } from '../registry/open.js';
import type { SqlDriver } from '../registry/sql/driver.js';
import type { SecurityConfig } from '../security/config.js';
import { openSecurityDatabase } from '../security/database.js';

/** `inferd keys` and `inferd audit` keep every command's exit statuses. */
import { UsageError } from './command.js';

export { CliCommand as SecurityCommand, UsageError } from './command.js';
export { rowsTable as table } from './table.js';

export interface CommonOptions {
  registry?: string;
  config?: string;
  json?: boolean;
}

export interface CliContext {
  db: SqlDriver;
  security: SecurityConfig;
  json: boolean;
  actor: string;
  print(text: string): void;
  printJson(value: unknown): void;
  /** Raw output, for JSON lines. */
  write(text: string): void;
}

export function withCommon(command: Command): Command {
  return command
    .option('--config <file>', 'server configuration file, for the registry URL and the secrets its security block names (default: $INFERD_CONFIG)')
    .option('--registry <url>', 'registry URL (default: the configuration\'s, else $INFERD_REGISTRY, else sqlite:$INFERD_HOME/registry.db)')
    .option('--json', 'print JSON instead of a table');
}

function cliActor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

export async function runSecurityCommand(command: Command, body: (ctx: CliContext) => Promise<void>): Promise<void> {
  const options = command.opts<CommonOptions>();
  const output = command.configureOutput();
  const writeOut = output.writeOut ?? ((text: string) => process.stdout.write(text));
  let failure: { message: string; usage: boolean } | undefined;
  let db: SqlDriver | undefined;
  try {
    const config = loadConfig(options.config !== undefined ? { file: options.config } : {});
    db = await openSecurityDatabase(options.registry ?? config.registry ?? defaultRegistryUrl());
    await body({
      db,
      security: config.security,
      json: options.json === true,
      actor: cliActor(),
      print: (text) => writeOut(text.endsWith('\n') ? text : `${text}\n`),
      printJson: (value) => writeOut(`${JSON.stringify(value, null, 2)}\n`),
      write: (text) => writeOut(text),
    });
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim();
    failure = { message, usage: error instanceof UsageError };
    if (!(error instanceof InferdError) && !(error instanceof UsageError) && process.env['INFERD_DEBUG'] !== undefined) {
      (output.writeErr ?? ((text: string) => process.stderr.write(text)))(`${String((error as Error).stack)}\n`);
    }
  } finally {
    await db?.close().catch(() => undefined);
  }
  if (failure !== undefined) command.error(`error: ${failure.message}`, { code: failure.usage ? 'inferd.usage' : 'inferd.failed', exitCode: failure.usage ? 2 : 1 });
}

export function when(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').replace(/\.[0-9]+Z$/, 'Z');
}

/** `90s`, `30m`, `24h`, `7d`, or plain milliseconds. */
export function parseDuration(text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (match === null) throw new UsageError(`'${text}' is not a duration (90s, 30m, 24h, 7d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms'];
  return Math.round(Number(match[1]) * unit);
}
