/**
 * `inferd cache clear`: drops cached predictions through a running server's admin API (its
 * memory and the Redis every replica shares), so it passes the server's authorisation and audit.
 *
 *   inferd cache clear [--model NAME] [--url http://127.0.0.1:8000] [--header 'Authorization: Bearer ...']
 */
import type { Command } from 'commander';
import { InvalidInputError, UnavailableError } from '../core/errors.js';

interface ClearOptions {
  url: string;
  model?: string;
  header: string[];
  json?: boolean;
}

export function registerCacheCommand(program: Command): void {
  const cache = program.command('cache').description('the prediction cache of a running server');
  cache
    .command('clear')
    .description('drop cached predictions (all models, or one with --model), in memory and in Redis')
    .option('--url <url>', 'the server', 'http://127.0.0.1:8000')
    .option('--model <name>', 'only this model')
    .option('--header <header>', "a request header, 'Name: value' (repeatable)", (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--json', 'print the answer as JSON')
    .action(async (options: ClearOptions) => {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const h of options.header) {
        const at = h.indexOf(':');
        if (at <= 0) throw new InvalidInputError(`--header must be 'Name: value', got '${h}'`);
        headers[h.slice(0, at).trim().toLowerCase()] = h.slice(at + 1).trim();
      }
      const target = `${options.url.replace(/\/+$/, '')}/v2/admin/cache/clear`;
      let response: Response;
      try {
        response = await fetch(target, { method: 'POST', headers, body: JSON.stringify(options.model !== undefined ? { model: options.model } : {}), signal: AbortSignal.timeout(30_000) });
      } catch (error) {
        throw new UnavailableError(`could not reach ${target}: ${(error as Error).message}`);
      }
      const text = await response.text();
      if (response.status !== 200) throw new UnavailableError(`${target} answered ${response.status}: ${text.slice(0, 500)}`);
      if (options.json) {
        process.stdout.write(`${text}\n`);
        return;
      }
      const body = JSON.parse(text) as { cleared: { memory: number; redis: number } };
      process.stdout.write(`cleared ${body.cleared.memory} cached answers in memory and ${body.cleared.redis} in Redis${options.model ? ` for model '${options.model}'` : ''}\n`);
    });
}
