/**
 * `inferd drift`: drift of a current data file against a reference (a training CSV/JSONL, or the
 * drift profile stored in the registry with a model version), as a table, JSON, or a
 * self-contained HTML report; optionally fires the drift actions (webhook, command) on the
 * decision.
 */
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { InvalidInputError } from '../core/errors.js';
import { defaultRegistryUrl, openRegistry } from '../registry/open.js';
import { readTable, type ReadProgress } from '../monitoring/dataset.js';
import { computeDrift, DRIFT_METHODS, type DriftMethod, type DriftOptions, type DriftReport, P_VALUE_METHODS } from '../monitoring/drift.js';
import { buildDriftProfile, type DriftProfile } from '../monitoring/profile.js';
import { renderDriftHtml } from '../monitoring/report-html.js';
import { DriftTrigger, type TriggerAction } from '../monitoring/triggers.js';
import type { Correction } from '../stats/multiple-testing.js';

interface DriftCliOptions {
  reference?: string;
  current: string;
  model?: string;
  registry?: string;
  json?: boolean;
  html?: string;
  method?: DriftMethod;
  columnMethod?: Record<string, DriftMethod>;
  threshold?: Partial<Record<DriftMethod, number>>;
  datasetThreshold?: number;
  correction?: Correction;
  exclude?: string[];
  output?: string[];
  webhook?: string;
  webhookSecret?: string;
  exec?: string;
  failOnDrift?: boolean;
}

function methodArg(text: string): DriftMethod {
  if (!(DRIFT_METHODS as readonly string[]).includes(text)) throw new InvalidArgumentError(`'${text}' is not a drift method (${DRIFT_METHODS.join(', ')})`);
  return text as DriftMethod;
}

function columnMethodArg(text: string, previous: Record<string, DriftMethod> = {}): Record<string, DriftMethod> {
  const eq = text.lastIndexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`'${text}' is not column=method`);
  return { ...previous, [text.slice(0, eq)]: methodArg(text.slice(eq + 1)) };
}

function thresholdArg(text: string, previous: Partial<Record<DriftMethod, number>> = {}): Partial<Record<DriftMethod, number>> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`'${text}' is not method=value`);
  const value = Number(text.slice(eq + 1));
  if (!Number.isFinite(value) || value <= 0) throw new InvalidArgumentError(`threshold '${text}' needs a positive number`);
  return { ...previous, [methodArg(text.slice(0, eq))]: value };
}

function shareArg(text: string): number {
  const value = Number(text);
  if (!(value > 0 && value <= 1)) throw new InvalidArgumentError(`'${text}' is not a share in (0, 1]`);
  return value;
}

function correctionArg(text: string): Correction {
  if (text !== 'none' && text !== 'bonferroni' && text !== 'fdr_bh') throw new InvalidArgumentError(`'${text}' is not a correction (none, bonferroni, fdr_bh)`);
  return text;
}

function collect(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}

function fmt(x: number | null): string {
  if (x === null || Number.isNaN(x)) return '-';
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const a = Math.abs(x);
  return a < 1e-4 || a >= 1e6 ? x.toExponential(2) : String(Number(x.toPrecision(4)));
}

export function driftTable(report: DriftReport): string {
  const headers = ['COLUMN', 'ROLE', 'KIND', 'METHOD', 'SCORE', 'P-VALUE', 'THRESHOLD', 'PSI', 'SEVERITY', 'DRIFT'];
  const rows = report.columns.map((c) => [
    c.name,
    c.role,
    c.kind,
    c.method,
    fmt(c.score),
    fmt(c.adjustedPValue),
    `${P_VALUE_METHODS.has(c.method) ? '<' : '>='} ${fmt(c.threshold)}`,
    fmt(c.psi),
    c.severity,
    c.drifted ? 'DRIFT' : 'no',
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const d = report.decision;
  const summary = [
    `${report.dataset.drifted ? 'DATA-SET DRIFT' : 'no data-set drift'}: ${report.dataset.driftedColumns.length} of ${report.dataset.inputs} input columns drifted (share ${fmt(report.dataset.share)}, threshold ${report.dataset.threshold})`,
    `decision: severity ${d.severity}, action ${d.action}${d.reasons.length ? ` (${d.reasons.join('; ')})` : ''}`,
  ];
  return [line(headers), ...rows.map(line), '', ...summary].join('\n') + '\n';
}

/** A progress bar on standard error, drawn only when standard output is a terminal. */
function progressBar(enabled: boolean): { update: (label: string, done: number, total: number) => void; end: () => void } {
  let last = 0;
  let drawn = false;
  return {
    update(label, done, total) {
      if (!enabled) return;
      const now = Date.now();
      if (done < total && now - last < 100) return;
      last = now;
      const width = 30;
      const filled = total > 0 ? Math.round((done / total) * width) : width;
      process.stderr.write(`\r${label.padEnd(18)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${total > 0 ? Math.round((done / total) * 100) : 100}%`);
      drawn = true;
    },
    end() {
      if (drawn) process.stderr.write('\r\x1b[K');
    },
  };
}

/** Files above this size get a progress bar. */
const PROGRESS_MIN_BYTES = 4 * 1024 * 1024;

async function loadReference(o: DriftCliOptions, onProgress: ReadProgress): Promise<{ profile: DriftProfile; label: string; model?: string; version?: number }> {
  if (o.reference !== undefined) {
    const table = await readTable(o.reference, onProgress);
    return { profile: buildDriftProfile(table, { outputs: o.output ?? [], exclude: o.exclude ?? [] }), label: o.reference, ...(o.model ? { model: o.model } : {}) };
  }
  if (o.model === undefined) throw new InvalidInputError('give --reference <file>, or --model NAME@VERSION to use the drift profile stored in the registry');
  const registry = await openRegistry(o.registry ?? defaultRegistryUrl());
  try {
    const version = await registry.resolve(o.model);
    const stored = await registry.getProfile(version.name, version.version);
    if (!stored?.drift) throw new InvalidInputError(`${version.name} version ${version.version} has no drift profile: run inferd models profile ${version.name}@${version.version} --data <training data>`);
    return { profile: stored.drift, label: `${version.name}@${version.version} (registry)`, model: version.name, version: version.version };
  } finally {
    await registry.close().catch(() => undefined);
  }
}

export async function runDrift(o: DriftCliOptions, write: (text: string) => void): Promise<number> {
  const bar = progressBar(process.stdout.isTTY === true && o.json !== true);
  const reading = (label: string): ReadProgress => (read, total) => {
    if (total >= PROGRESS_MIN_BYTES) bar.update(label, read, total);
  };
  try {
    const reference = await loadReference(o, reading('reading reference'));
    const current = await readTable(o.current, reading('reading current'));
    const options: DriftOptions = {
      ...(o.method ? { method: o.method } : {}),
      ...(o.columnMethod ? { methods: o.columnMethod } : {}),
      ...(o.threshold ? { thresholds: o.threshold } : {}),
      ...(o.datasetThreshold !== undefined ? { datasetThreshold: o.datasetThreshold } : {}),
      ...(o.correction ? { correction: o.correction } : {}),
    };
    const big = current.rows * current.columns.length >= 1_000_000;
    const report = computeDrift(reference.profile, current, options, (done, total) => {
      if (big) bar.update('computing', done, total);
    });
    bar.end();
    if (o.html !== undefined) {
      await writeFile(o.html, renderDriftHtml(report, { reference: reference.label, current: o.current, ...(reference.model ? { model: reference.model } : {}), ...(reference.version !== undefined ? { version: reference.version } : {}) }));
    }
    let outcomes: Awaited<ReturnType<DriftTrigger['consider']>>;
    const actions: TriggerAction[] = [];
    if (o.webhook) actions.push({ kind: 'webhook', url: o.webhook, ...(o.webhookSecret ? { secret: o.webhookSecret } : {}) });
    if (o.exec) actions.push({ kind: 'command', command: o.exec });
    if (actions.length > 0) {
      const trigger = new DriftTrigger({ actions, ...(reference.model ? { model: reference.model } : {}), ...(reference.version !== undefined ? { version: reference.version } : {}) });
      outcomes = await trigger.consider(report);
    }
    if (o.json) {
      write(`${JSON.stringify(outcomes ? { ...report, actions: outcomes } : report, null, 2)}\n`);
    } else {
      write(driftTable(report));
      if (o.html !== undefined) write(`HTML report written to ${o.html}\n`);
      for (const a of outcomes ?? []) write(`${a.action} ${a.target}: ${a.ok ? 'ok' : `failed (${a.error})`} after ${a.attempts} attempt${a.attempts === 1 ? '' : 's'}\n`);
    }
    if (outcomes?.some((a) => !a.ok)) return 1;
    return o.failOnDrift && report.dataset.drifted ? 3 : 0;
  } finally {
    bar.end();
  }
}

export function registerDriftCommand(program: Command): Command {
  return program
    .command('drift')
    .description('compare current data with reference data: per-column drift tests, data-set drift, a decision; table, JSON or HTML')
    .requiredOption('--current <file>', 'current data (CSV with a header row, or JSONL)')
    .option('--reference <file>', 'reference data, usually the training data (CSV or JSONL)')
    .option('--model <name[@version]>', "model the data belongs to; without --reference, its version's stored drift profile is used")
    .option('--registry <url>', 'registry URL (default: $INFERD_REGISTRY, else sqlite:$INFERD_HOME/registry.db)')
    .option('--json', 'print the report as JSON')
    .option('--html <file>', 'also write a self-contained HTML report')
    .addOption(new Option('--method <method>', 'one method for every column (default: by type and size)').argParser(methodArg))
    .addOption(new Option('--column-method <column=method>', 'method for one column (repeatable)').argParser(columnMethodArg))
    .addOption(new Option('--threshold <method=value>', 'threshold of a method (repeatable)').argParser(thresholdArg))
    .addOption(new Option('--dataset-threshold <share>', 'share of drifted input columns that makes data-set drift (default 0.5)').argParser(shareArg))
    .addOption(new Option('--correction <method>', 'multiple-testing correction of p-values: none, bonferroni, fdr_bh').argParser(correctionArg))
    .addOption(new Option('--exclude <column>', 'reference column to leave out, e.g. an id (repeatable)').argParser(collect))
    .addOption(new Option('--output <column>', 'column holding a model output, e.g. the predicted label (repeatable)').argParser(collect))
    .option('--webhook <url>', 'POST the decision to this URL when it calls for an action')
    .option('--webhook-secret <secret>', 'HMAC-SHA256 key for the X-Inferd-Signature header')
    .option('--exec <command>', 'run this shell command (event JSON on stdin) when the decision calls for an action')
    .option('--fail-on-drift', 'exit with status 3 when the data set drifted')
    .action(async function (this: Command, options: DriftCliOptions) {
      const output = this.configureOutput();
      const write = output.writeOut ?? ((text: string) => process.stdout.write(text));
      let status: number;
      try {
        status = await runDrift(options, write);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.error(`error: ${message}`, { code: 'inferd.failed', exitCode: error instanceof InvalidInputError ? 2 : 1 });
      }
      if (status === 3) this.error('data-set drift detected', { code: 'inferd.drift', exitCode: 3 });
      if (status !== 0) this.error('error: a drift action failed', { code: 'inferd.failed', exitCode: status });
    });
}
