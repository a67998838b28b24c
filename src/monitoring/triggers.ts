/**
 * Actions fired on a drift decision: an HTTP webhook (retried with exponential backoff, signed
 * with HMAC-SHA256) and a shell command. A DriftTrigger fires once per decision: when the
 * decision's key (severity and data-set drift) changes to one with an action, not on every window
 * or request that confirms it.
 *
 * Webhook request: POST, JSON body (DriftEvent), headers
 *   X-Inferd-Event: drift.decision
 *   X-Inferd-Delivery: <uuid, the same on every retry of one event, for de-duplication>
 *   X-Inferd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares it in
 * constant time, and rejects old timestamps. 2xx is success; 408, 429, 5xx and network errors are
 * retried; other 4xx are not (the receiver refused the event).
 *
 * Shell command: run with /bin/sh -c, the event as JSON on stdin, and INFERD_DRIFT_MODEL,
 * INFERD_DRIFT_VERSION, INFERD_DRIFT_SEVERITY, INFERD_DRIFT_ACTION, INFERD_DRIFT_COLUMNS in the
 * environment; success is exit status 0 within the timeout.
 */
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { InvalidInputError } from '../core/errors.js';
import type { Decision, DriftAction, Severity } from './decision.js';
import type { DriftReport } from './drift.js';

export interface WebhookAction {
  kind: 'webhook';
  url: string;
  /** HMAC key for X-Inferd-Signature; without it the header is left out. */
  secret?: string;
  headers?: Record<string, string>;
  /** Attempts in all, the first included (default 5). */
  attempts?: number;
  /** First retry delay in ms (default 500), doubling up to maxDelayMs (default 30,000). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Per attempt (default 5,000 ms). */
  timeoutMs?: number;
}

export interface CommandAction {
  kind: 'command';
  command: string;
  timeoutMs?: number;
}

export type TriggerAction = WebhookAction | CommandAction;

export interface DriftEvent {
  event: 'drift.decision';
  model: string | null;
  version: number | null;
  at: string;
  decision: Decision;
  dataset: DriftReport['dataset'];
  columns: Array<{ name: string; method: string; score: number; pValue: number | null; threshold: number; drifted: boolean; psi: number }>;
}

export interface ActionOutcome {
  action: TriggerAction['kind'];
  target: string;
  ok: boolean;
  attempts: number;
  error?: string;
}

export function driftEvent(report: DriftReport, model: string | null = null, version: number | null = null): DriftEvent {
  return {
    event: 'drift.decision',
    model,
    version,
    at: new Date().toISOString(),
    decision: report.decision,
    dataset: report.dataset,
    columns: report.columns.map((c) => ({ name: c.name, method: c.method, score: c.score, pValue: c.pValue, threshold: c.threshold, drifted: c.drifted, psi: c.psi })),
  };
}

/** The X-Inferd-Signature value for a body at a time. */
export function signBody(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

class PermanentFailure extends Error {}

/** Posts one event to a webhook, retrying transient failures. */
export async function sendWebhook(action: WebhookAction, event: DriftEvent): Promise<ActionOutcome> {
  let url: URL;
  try {
    url = new URL(action.url);
  } catch {
    throw new InvalidInputError(`webhook url '${action.url}' is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidInputError(`webhook url '${action.url}' must be http or https`);
  const body = JSON.stringify(event);
  const delivery = randomUUID();
  const attempts = action.attempts ?? 5;
  let tries = 0;
  const policy = retry(handleWhen((error) => !(error instanceof PermanentFailure)), {
    maxAttempts: attempts - 1,
    backoff: new ExponentialBackoff({ initialDelay: action.initialDelayMs ?? 500, maxDelay: action.maxDelayMs ?? 30_000 }),
  });
  try {
    await policy.execute(async () => {
      tries++;
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'x-inferd-event': 'drift.decision',
        'x-inferd-delivery': delivery,
        ...action.headers,
      };
      if (action.secret !== undefined) headers['x-inferd-signature'] = signBody(action.secret, body, Math.floor(Date.now() / 1000));
      let response: Response;
      try {
        response = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(action.timeoutMs ?? 5000) });
      } catch (error) {
        throw new Error(`POST ${url.origin}${url.pathname}: ${(error as Error).message}`);
      }
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return;
      const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      const message = `POST ${url.origin}${url.pathname} answered ${response.status}`;
      if (!retryable) throw new PermanentFailure(message);
      throw new Error(message);
    });
    return { action: 'webhook', target: url.origin + url.pathname, ok: true, attempts: tries };
  } catch (error) {
    return { action: 'webhook', target: url.origin + url.pathname, ok: false, attempts: tries, error: (error as Error).message };
  }
}

/** Output kept from a command, so a chatty one cannot fill memory. */
const MAX_COMMAND_OUTPUT = 64 * 1024;

export function runCommand(action: CommandAction, event: DriftEvent): Promise<ActionOutcome> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', action.command], {
      env: {
        ...process.env,
        INFERD_DRIFT_MODEL: event.model ?? '',
        INFERD_DRIFT_VERSION: event.version === null ? '' : String(event.version),
        INFERD_DRIFT_SEVERITY: event.decision.severity,
        INFERD_DRIFT_ACTION: event.decision.action,
        INFERD_DRIFT_COLUMNS: event.decision.driftedColumns.join(','),
      },
      stdio: ['pipe', 'ignore', 'pipe'],
      timeout: action.timeoutMs ?? 60_000,
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_COMMAND_OUTPUT) stderr += chunk.toString('utf8');
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(event));
    child.on('error', (error) => resolve({ action: 'command', target: action.command, ok: false, attempts: 1, error: error.message }));
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ action: 'command', target: action.command, ok: true, attempts: 1 });
      else resolve({ action: 'command', target: action.command, ok: false, attempts: 1, error: signal ? `killed by ${signal}` : `exit status ${code}${stderr ? `: ${stderr.trim().slice(0, 500)}` : ''}` });
    });
  });
}

export interface DriftTriggerOptions {
  actions: readonly TriggerAction[];
  /** Lowest severity that fires (default 'small'). */
  minSeverity?: Severity;
  model?: string;
  version?: number;
}

const SEVERITY_ORDER: readonly Severity[] = ['none', 'small', 'moderate', 'severe'];

/** Fires the configured actions once per decision. */
export class DriftTrigger {
  private lastKey: string | undefined;
  private readonly minSeverity: Severity;

  constructor(private readonly options: DriftTriggerOptions) {
    this.minSeverity = options.minSeverity ?? 'small';
    for (const a of options.actions) {
      if (a.kind === 'webhook') new URL(a.url);
      else if (a.kind === 'command' && a.command.trim() === '') throw new InvalidInputError('a drift command action needs a command');
    }
  }

  /**
   * Considers a report; fires every action when its decision is new and severe enough. Returns
   * the outcomes, or undefined when nothing fired.
   */
  async consider(report: DriftReport): Promise<ActionOutcome[] | undefined> {
    const decision = report.decision;
    if (!decision.enoughData) return undefined;
    const key = decision.key;
    if (key === this.lastKey) return undefined;
    this.lastKey = key;
    const fires = decision.action !== ('none' satisfies DriftAction) && SEVERITY_ORDER.indexOf(decision.severity) >= SEVERITY_ORDER.indexOf(this.minSeverity);
    if (!fires) return undefined;
    const event = driftEvent(report, this.options.model ?? null, this.options.version ?? null);
    return Promise.all(this.options.actions.map((a) => (a.kind === 'webhook' ? sendWebhook(a, event) : runCommand(a, event))));
  }
}
