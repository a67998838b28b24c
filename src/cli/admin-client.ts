/**
 * What the `traffic` and `experiment` commands share: a bounded HTTP client for a running
 * server's admin API, output formatting, and error handling (exit 2 for a malformed command
 * line, 1 for an operation that failed).
 */
import type { Command } from 'commander';

export const DEFAULT_URL = 'http://127.0.0.1:8000';
const TIMEOUT_MS = 15_000;

import { UsageError } from './command.js';

export { CliCommand as AdminCommand, UsageError } from './command.js';
export { table } from './table.js';

export interface Output {
  json: boolean;
  print(text: string): void;
  printJson(value: unknown): void;
}

export interface AdminClient {
  get<T>(path: string): Promise<T>;
  put<T>(path: string, body: unknown): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
}

export class AdminHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export function adminClient(baseUrl: string, token?: string): AdminClient {
  let base: URL;
  try {
    base = new URL(baseUrl);
  } catch {
    throw new UsageError(`'${baseUrl}' is not a URL (e.g. http://127.0.0.1:8000)`);
  }
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const url = new URL(path, base);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      throw new Error(`cannot reach the server at ${base.origin}${cause ? ` (${cause})` : ''}: ${(error as Error).message}`);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      // Non-JSON answer: reported as text below.
    }
    if (!response.ok) {
      const message = typeof parsed === 'object' && parsed !== null && typeof (parsed as { error?: unknown }).error === 'string' ? (parsed as { error: string }).error : text.slice(0, 300);
      throw new AdminHttpError(response.status, `${method} ${url.pathname}: ${response.status} ${message}`, parsed);
    }
    return parsed as T;
  };
  return { get: (path) => call('GET', path), put: (path, body) => call('PUT', path, body), post: (path, body) => call('POST', path, body) };
}

export function withServer(command: Command): Command {
  return command
    .option('--url <url>', `server URL (default $INFERD_URL, else ${DEFAULT_URL})`)
    .option('--token <token>', 'bearer token for the admin API (default $INFERD_TOKEN)')
    .option('--json', 'print JSON instead of a table');
}

export function fmt(value: number | null | undefined, digits = 4): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  return Number.isInteger(value) ? String(value) : Number(value.toPrecision(digits)).toString();
}

/** Runs a command body with its output and client, mapping failures to exit statuses. */
export async function runAdmin(command: Command, body: (out: Output, client: () => AdminClient) => Promise<void>): Promise<void> {
  const options = command.optsWithGlobals<{ url?: string; token?: string; json?: boolean }>();
  const output = command.configureOutput();
  const writeOut = output.writeOut ?? ((text: string) => process.stdout.write(text));
  const out: Output = {
    json: options.json === true,
    print: (text) => writeOut(text.endsWith('\n') ? text : `${text}\n`),
    printJson: (value) => writeOut(`${JSON.stringify(value, null, 2)}\n`),
  };
  const client = () => adminClient(options.url ?? process.env['INFERD_URL'] ?? DEFAULT_URL, options.token ?? process.env['INFERD_TOKEN']);
  let failure: { message: string; usage: boolean } | undefined;
  try {
    await body(out, client);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ').trim();
    failure = { message, usage: error instanceof UsageError };
  }
  if (failure !== undefined) command.error(`error: ${failure.message}`, { code: failure.usage ? 'inferd.usage' : 'inferd.failed', exitCode: failure.usage ? 2 : 1 });
}
