/**
 * `inferd batch score|submit|status` and `inferd worker`: batch scoring of CSV and JSON Lines
 * files, on this machine or spread over workers through Redis (src/streaming/batch).
 */
import type { Command } from 'commander';
import { pino } from 'pino';
import { InvalidInputError } from '../core/errors.js';
import { batchJobSpec, batchJobStatus, startBatchWorker, submitBatchJob } from '../streaming/batch/jobs.js';
import { scoreFile, type ScoreProgress } from '../streaming/batch/score.js';
import { repositoryScorer, urlScorer, type Scorer } from '../streaming/batch/scorer.js';
import type { TableFormat } from '../streaming/batch/table.js';

interface SourceFlags {
  modelRepository?: string;
  url?: string;
}

interface TableFlags {
  idColumn?: string;
  excludeColumns?: string;
  batchSize?: string;
  chunkRows?: string;
  concurrency?: string;
  inputFormat?: string;
  outputFormat?: string;
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidInputError(`${flag} must be a positive integer, got '${value}'`);
  return n;
}

function format(value: string | undefined, flag: string): TableFormat | undefined {
  if (value === undefined) return undefined;
  if (value !== 'csv' && value !== 'jsonl') throw new InvalidInputError(`${flag} must be csv or jsonl, got '${value}'`);
  return value;
}

function scorerFrom(flags: SourceFlags, model: string, version: string | undefined): Promise<Scorer> {
  if (flags.url && flags.modelRepository) throw new InvalidInputError('give either --url or --model-repository, not both');
  if (flags.url) return Promise.resolve(urlScorer(flags.url, model, version));
  if (flags.modelRepository) return repositoryScorer(flags.modelRepository, model, version, pino({ level: 'warn' }));
  throw new InvalidInputError('name where the model is: --model-repository DIR or --url http://server:8000');
}

function tableOptions(flags: TableFlags) {
  const exclude = flags.excludeColumns?.split(',').map((c) => c.trim()).filter(Boolean);
  const batchSize = positiveInt(flags.batchSize, '--batch-size');
  const chunkRows = positiveInt(flags.chunkRows, '--chunk-rows');
  const concurrency = positiveInt(flags.concurrency, '--concurrency');
  const inputFormat = format(flags.inputFormat, '--input-format');
  const outputFormat = format(flags.outputFormat, '--output-format');
  return {
    ...(flags.idColumn ? { idColumn: flags.idColumn } : {}),
    ...(exclude && exclude.length > 0 ? { excludeColumns: exclude } : {}),
    ...(batchSize ? { batchSize } : {}),
    ...(chunkRows ? { chunkRows } : {}),
    ...(concurrency ? { concurrency } : {}),
    ...(inputFormat ? { inputFormat } : {}),
    ...(outputFormat ? { outputFormat } : {}),
  };
}

function addTableOptions(command: Command): Command {
  return command
    .option('--id-column <name>', "column carried to the output to identify rows (default 'id' when present, else the row number)")
    .option('--exclude-columns <a,b>', 'input columns that are not features (a label, say)')
    .option('--batch-size <rows>', "rows per inference request (default the model's max_batch_size)")
    .option('--chunk-rows <rows>', 'rows per checkpoint / per distributed chunk (default 10000)')
    .option('--concurrency <n>', 'inference requests in flight (default 4)')
    .option('--input-format <csv|jsonl>', 'default from the file name')
    .option('--output-format <csv|jsonl>', 'default from the file name');
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** One updating line on a terminal: bar, rows, rows/s, ETA (from the bytes read). */
function progressBar(stream: NodeJS.WriteStream): (p: ScoreProgress) => void {
  let startRows: number | undefined;
  let startBytes = 0;
  return (p) => {
    startRows ??= p.rowsDone;
    if (startBytes === 0) startBytes = p.bytesDone;
    const fraction = p.bytesTotal > 0 ? p.bytesDone / p.bytesTotal : 1;
    const seconds = p.elapsedMs / 1000;
    const rate = seconds > 0 ? (p.rowsDone - startRows) / seconds : 0;
    const byteRate = seconds > 0 ? (p.bytesDone - startBytes) / seconds : 0;
    const eta = byteRate > 0 ? (p.bytesTotal - p.bytesDone) / byteRate : Infinity;
    const width = 24;
    const filled = Math.round(fraction * width);
    stream.write(
      `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(1)}%  ${p.rowsDone.toLocaleString('en')} rows  ${Math.round(rate).toLocaleString('en')} rows/s  ETA ${duration(eta)}${p.failed ? `  ${p.failed} failed` : ''}   `,
    );
  };
}

export function registerBatchCommands(program: Command): void {
  const batch = program.command('batch').description('score files with a model: on this machine, or as distributed jobs on Redis');

  addTableOptions(
    batch
      .command('score')
      .description('score a CSV or JSON Lines file on this machine (resumes from its checkpoint after an interruption)')
      .requiredOption('--model <name>', 'model to score with')
      .option('--model-version <v>', 'model version (default: the latest ready one)')
      .requiredOption('--input <file>', 'data.csv or data.jsonl')
      .requiredOption('--output <file>', 'scored.csv or scored.jsonl')
      .option('--model-repository <dir>', 'load the model in this process from a model repository')
      .option('--url <url>', "score through a running inferd server's REST API")
      .option('--failed <file>', 'side file of the rows that failed (default <output>.failed.jsonl)')
      .option('--restart', 'ignore a checkpoint and start over'),
  ).action(async (flags: SourceFlags & TableFlags & { model: string; modelVersion?: string; input: string; output: string; failed?: string; restart?: boolean }) => {
    const scorer = await scorerFrom(flags, flags.model, flags.modelVersion);
    const stop = new AbortController();
    const onSignal = () => {
      process.stderr.write('\ninterrupted: finishing the chunk in progress and writing the checkpoint\n');
      stop.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const summary = await scoreFile({
        scorer,
        input: flags.input,
        output: flags.output,
        ...tableOptions(flags),
        ...(flags.failed ? { failedFile: flags.failed } : {}),
        ...(flags.restart ? { restart: true } : {}),
        signal: stop.signal,
        ...(process.stderr.isTTY ? { onProgress: progressBar(process.stderr) } : {}),
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      process.stdout.write(`${JSON.stringify({ ...summary, rowsPerSecond: Math.round((summary.rows - summary.resumedAt) / Math.max(summary.seconds, 1e-3)) })}\n`);
      if (!summary.complete) process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await scorer.close();
    }
  });

  addTableOptions(
    batch
      .command('submit')
      .description('enqueue a distributed scoring job on Redis (one task per chunk; submitting the same job again adds nothing)')
      .requiredOption('--redis <url>', 'redis://host:6379')
      .requiredOption('--model <name>', 'model to score with')
      .option('--model-version <v>', 'model version')
      .requiredOption('--input <file>', 'data.csv or data.jsonl, on a path every worker can read')
      .requiredOption('--output <file>', 'scored.csv or scored.jsonl, on a path every worker can write')
      .option('--job-id <id>', 'job id (default: a digest of the input, model and options)')
      .option('--attempts <n>', 'attempts per chunk, with exponential backoff (default 3)'),
  ).action(async (flags: TableFlags & { redis: string; model: string; modelVersion?: string; input: string; output: string; jobId?: string; attempts?: string }) => {
    const options = tableOptions(flags);
    const spec = batchJobSpec({
      model: flags.model,
      ...(flags.modelVersion ? { version: flags.modelVersion } : {}),
      input: flags.input,
      output: flags.output,
      ...options,
    });
    const attempts = positiveInt(flags.attempts, '--attempts');
    const submitted = await submitBatchJob(flags.redis, spec, { ...(flags.jobId ? { jobId: flags.jobId } : {}), ...(attempts ? { attempts } : {}) });
    process.stdout.write(`${JSON.stringify(submitted)}\n`);
  });

  batch
    .command('status')
    .description('progress and result of a distributed job, as JSON')
    .argument('<job>', 'job id')
    .requiredOption('--redis <url>', 'redis://host:6379')
    .action(async (job: string, flags: { redis: string }) => {
      const status = await batchJobStatus(flags.redis, job);
      if (!status) throw new InvalidInputError(`no batch job '${job}' on ${flags.redis}`);
      process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    });

  program
    .command('worker')
    .description('process distributed batch jobs from Redis until SIGTERM')
    .requiredOption('--redis <url>', 'redis://host:6379')
    .option('--model-repository <dir>', 'load models in this process from a model repository')
    .option('--url <url>', "score through a running inferd server's REST API")
    .option('--concurrency <n>', 'chunks processed at once (default 1)')
    .option('--name <name>', 'worker name in job results (default host-pid)')
    .option('--log-level <level>', 'default info')
    .action(async (flags: SourceFlags & { redis: string; concurrency?: string; name?: string; logLevel?: string }) => {
      if (!flags.url && !flags.modelRepository) throw new InvalidInputError('name where models are: --model-repository DIR or --url http://server:8000');
      const logger = pino({ level: flags.logLevel ?? 'info' });
      const concurrency = positiveInt(flags.concurrency, '--concurrency');
      const worker = startBatchWorker(flags.redis, {
        scorerFor: (model, version) => scorerFrom(flags, model, version),
        ...(concurrency ? { concurrency } : {}),
        ...(flags.name ? { name: flags.name } : {}),
        logger,
      });
      logger.info({ worker: worker.name, redis: flags.redis }, 'batch worker started');
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      logger.info('batch worker stopping: finishing the chunks in progress');
      await worker.close();
    });
}
