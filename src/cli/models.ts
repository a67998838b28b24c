/**
 * `inferd models ...`: the registry from the command line. Human-readable tables by default,
 * `--json` for scripts. Errors are one line on stderr; exit status 1 for a failed operation,
 * 2 for a malformed command line.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InferdError, InvalidInputError } from '../core/errors.js';
import type { TensorMetadata } from '../core/types.js';
import { parseStage, parseReference } from '../registry/names.js';
import { defaultRegistryUrl, openRegistry } from '../registry/open.js';
import { artifactCipherFromConfig } from '../security/artifacts/from-config.js';
import type { Registry } from '../registry/registry.js';
import { formatShape } from '../registry/signature.js';
import type { ModelVersion, RegistryEvent, Stage } from '../registry/types.js';
import { projectVariable } from '../config/environment.js';
import { CliCommand, UsageError } from './command.js';
import { rowsTable as table } from './table.js';
import { readTable, type Column, type Table } from '../monitoring/dataset.js';
import { scoreColumns } from '../monitoring/outputs.js';
import { loadRuntime } from '../runtimes/index.js';
import { buildDriftProfile } from '../monitoring/profile.js';
import { computeProfile, profileFromCsv, type InputProfile } from '../validation/ranges.js';


interface CommonOptions {
  registry?: string;
  artifacts?: string;
  json?: boolean;
}

interface Context {
  registry: Registry;
  json: boolean;
  print(text: string): void;
  printJson(value: unknown): void;
}

// ---- argument parsers (their errors are usage errors) ----

function versionArg(text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError(`'${text}' is not a version number`);
  }
  return Number(text);
}

function eventIdArg(text: string): number {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new InvalidArgumentError(`'${text}' is not an event id`);
  return Number(text);
}

function stageArg(text: string): Stage {
  const stage = parseStage(text);
  if (stage === undefined) throw new InvalidArgumentError(`'${text}' is not a stage (None, Staging, Production, Archived)`);
  return stage;
}

/** 'none' stays a string: commander turns an option value of null into ''. */
function expectArg(text: string): number | 'none' {
  return text.toLowerCase() === 'none' ? 'none' : versionArg(text);
}

function expectation(value: number | 'none' | undefined): { expected?: number | null } {
  if (value === undefined) return {};
  return { expected: value === 'none' ? null : value };
}

function pair(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`'${text}' is not key=value`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}

function collectTag(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const [key, value] = pair(text);
  return { ...previous, [key]: value };
}

function collectMetric(text: string, previous: Record<string, number> = {}): Record<string, number> {
  const [key, raw] = pair(text);
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) throw new InvalidArgumentError(`metric '${key}' needs a number, got '${raw}'`);
  return { ...previous, [key]: value };
}

function collect(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}

/** The input-range profile of a JSONL table: its numeric columns other than `leaveOut`. */
async function profileFromTable(table: Table, file: string, leaveOut: string[]): Promise<InputProfile> {
  const columns = table.columns.filter((c) => !leaveOut.includes(c.name));
  const text = columns.find((c) => c.kind === 'string');
  if (text) throw new InvalidInputError(`${file}: column '${text.name}' is not numeric; exclude it with --exclude or mark it with --output`);
  const profile = computeProfile(columns.map((c) => ({ name: c.name, values: c.values as Float64Array })), leaveOut);
  profile.source = { file: basename(file), sha256: createHash('sha256').update(await readFile(file)).digest('hex') };
  return profile;
}

/** Runs a registry version's ONNX file over input columns in this process and returns its derived output columns. */
async function scoreWithModel(path: string, model: string, version: string, inputs: Column[]): Promise<Column[]> {
  const runtime = await loadRuntime({
    kind: 'onnx',
    model,
    version,
    path,
    onnx: { intraOpThreads: 1, interOpThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'], enableCpuMemArena: true, enableMemPattern: true, allowSpinning: false },
    parameters: {},
    warmup: [],
    logLevel: 'silent',
  });
  try {
    return await scoreColumns(runtime, inputs);
  } finally {
    await runtime.close();
  }
}

// ---- output ----

function when(iso: string): string {
  return iso.replace('T', ' ').replace(/\.[0-9]+Z$/, 'Z');
}

function shortSha(sha256: string): string {
  return sha256.slice(0, 12);
}

function tags(value: Record<string, string>): string {
  return Object.entries(value)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

function tensors(list: TensorMetadata[]): string[] {
  return list.map((t) => `    ${t.name}  ${t.datatype}  ${formatShape(t.shape)}`);
}

function num(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, '');
}

function versionDetail(v: ModelVersion, profile: InputProfile | null): string {
  const lines = [
    `${v.name} version ${v.version} (${v.semver})`,
    `  stage:       ${v.stage}`,
    `  aliases:     ${v.aliases.join(', ') || '-'}`,
    `  description: ${v.description || '-'}`,
    `  tags:        ${tags(v.tags) || '-'}`,
    `  created:     ${when(v.createdAt)} by ${v.createdBy}`,
    `  artifact:    sha256 ${v.artifact.sha256}, ${v.artifact.size} bytes`,
  ];
  const l = v.lineage;
  if (l.source !== undefined) lines.push(`  source:      ${l.source}`);
  if (l.runId !== undefined) lines.push(`  run id:      ${l.runId}`);
  if (l.metrics !== undefined && Object.keys(l.metrics).length > 0) {
    lines.push(`  metrics:     ${Object.entries(l.metrics).map(([k, m]) => `${k}=${num(m)}`).join(', ')}`);
  }
  if (l.trainingData !== undefined) lines.push(`  training:    ${l.trainingData.path} (sha256 ${l.trainingData.sha256})`);
  lines.push('  inputs:', ...tensors(v.signature.inputs), '  outputs:', ...tensors(v.signature.outputs));
  if (profile !== null) {
    const from = profile.source === undefined ? '' : ` from ${profile.source.file}`;
    lines.push(`  profile:     ${profile.features.length} features${from} (${profile.rows} rows)`);
  } else {
    lines.push('  profile:     -');
  }
  return lines.join('\n') + '\n';
}

function versionRows(versions: ModelVersion[]): string {
  return table(
    ['VERSION', 'SEMVER', 'STAGE', 'ALIASES', 'SHA256', 'CREATED', 'BY', 'DESCRIPTION'],
    versions.map((v) => [
      String(v.version),
      v.semver,
      v.stage,
      v.aliases.join(',') || '-',
      shortSha(v.artifact.sha256),
      when(v.createdAt),
      v.createdBy,
      v.description,
    ]),
  );
}

function profileRows(profile: InputProfile): string {
  return table(
    ['#', 'FEATURE', 'MIN', 'P01', 'P99', 'MAX', 'MEAN', 'STD'],
    profile.features.map((f) => [String(f.index), f.name, num(f.min), num(f.p01), num(f.p99), num(f.max), num(f.mean), num(f.std)]),
  );
}

function eventRows(events: RegistryEvent[]): string {
  return table(
    ['ID', 'TIME', 'ACTOR', 'ACTION', 'MODEL', 'VERSION', 'DETAILS'],
    events.map((e) => [String(e.id), when(e.at), e.actor, e.action, e.model, e.version === null ? '-' : String(e.version), JSON.stringify(e.details)]),
  );
}

// ---- plumbing ----

function withCommon(command: Command): Command {
  return command
    .option('--registry <url>', 'registry URL: sqlite:<file> or postgres://... (default: $INFERD_REGISTRY, else sqlite:$INFERD_HOME/registry.db)')
    .option('--artifacts <dir|url>', 'artifact store: a directory or s3://bucket/prefix (default: $INFERD_REGISTRY_OPTIONS__ARTIFACTS, else beside the registry)')
    .option('--json', 'print JSON instead of a table');
}

function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ').trim();
}

async function run(command: Command, body: (ctx: Context) => Promise<void>): Promise<void> {
  const options = command.opts<CommonOptions>();
  const output = command.configureOutput();
  const writeOut = output.writeOut ?? ((text: string) => process.stdout.write(text));
  let failure: { message: string; usage: boolean } | undefined;
  let registry: Registry | undefined;
  try {
    const artifactCipher = artifactCipherFromConfig();
    const artifactsAt = options.artifacts ?? (process.env['INFERD_REGISTRY_OPTIONS__ARTIFACTS'] || undefined);
    registry = await openRegistry(options.registry ?? defaultRegistryUrl(), { ...(artifactCipher !== undefined ? { artifactCipher } : {}), ...(artifactsAt !== undefined ? { artifactsAt } : {}) });
    const ctx: Context = {
      registry,
      json: options.json === true,
      print: (text) => writeOut(text.endsWith('\n') ? text : `${text}\n`),
      printJson: (value) => writeOut(`${JSON.stringify(value, null, 2)}\n`),
    };
    await body(ctx);
  } catch (error) {
    failure = { message: oneLine(error), usage: error instanceof UsageError };
    if (!(error instanceof InferdError) && !(error instanceof UsageError) && projectVariable('INFERD_DEBUG') !== undefined) {
      (output.writeErr ?? ((text: string) => process.stderr.write(text)))(`${String((error as Error).stack)}\n`);
    }
  } finally {
    await registry?.close().catch(() => undefined);
  }
  if (failure !== undefined) command.error(`error: ${failure.message}`, { code: failure.usage ? 'inferd.usage' : 'inferd.failed', exitCode: failure.usage ? 2 : 1 });
}

/**
 * Adds `models` and its subcommands to `program`. Call it after configuring the program's
 * output and exit behaviour (configureOutput, exitOverride): the subcommands copy them.
 */
export function registerModelsCommand(program: Command): void {
  const models = new CliCommand('models');
  models.copyInheritedSettings(program);
  models.description('manage the model registry: versions, aliases, stages, lineage and input profiles');
  program.addCommand(models);

  withCommon(
    models
      .command('register')
      .description('copy an ONNX model into the registry as a new version')
      .argument('<name>', 'model name')
      .argument('<file>', 'path to model.onnx')
      .option('--description <text>', 'what this version is')
      .addOption(new Option('--tag <key=value>', 'a tag (repeatable)').argParser(collectTag))
      .option('--semver <version>', 'MAJOR.MINOR.PATCH label (default: proposed from the previous signature)')
      .option('--source <text>', 'where the model came from')
      .option('--run-id <id>', 'training run id')
      .addOption(new Option('--metric <key=value>', 'a training metric (repeatable)').argParser(collectMetric))
      .option('--training-data <file>', 'training data file to fingerprint (SHA-256)'),
  ).action(async (name: string, file: string, _options: unknown, command: Command) => {
    const o = command.opts<{
      description?: string;
      tag?: Record<string, string>;
      semver?: string;
      source?: string;
      runId?: string;
      metric?: Record<string, number>;
      trainingData?: string;
    }>();
    await run(command, async (ctx) => {
      const version = await ctx.registry.register(name, file, {
        ...(o.description !== undefined ? { description: o.description } : {}),
        ...(o.tag !== undefined ? { tags: o.tag } : {}),
        ...(o.semver !== undefined ? { semver: o.semver } : {}),
        ...(o.source !== undefined ? { source: o.source } : {}),
        ...(o.runId !== undefined ? { runId: o.runId } : {}),
        ...(o.metric !== undefined ? { metrics: o.metric } : {}),
        ...(o.trainingData !== undefined ? { trainingData: o.trainingData } : {}),
      });
      if (ctx.json) return ctx.printJson(version);
      ctx.print(`registered ${version.name} version ${version.version} (${version.semver}), sha256 ${shortSha(version.artifact.sha256)}`);
      ctx.print(['  inputs:', ...tensors(version.signature.inputs), '  outputs:', ...tensors(version.signature.outputs)].join('\n'));
    });
  });

  withCommon(models.command('list').description('list registered models')).action(async (_options: unknown, command: Command) => {
    await run(command, async (ctx) => {
      const list = await ctx.registry.listModels();
      if (ctx.json) return ctx.printJson(list);
      if (list.length === 0) return ctx.print('no models registered');
      ctx.print(
        table(
          ['NAME', 'VERSIONS', 'LATEST', 'PRODUCTION', 'ALIASES', 'UPDATED', 'DESCRIPTION'],
          list.map((m) => [
            m.name,
            String(m.versionCount),
            m.latestVersion === null ? '-' : String(m.latestVersion),
            m.productionVersion === null ? '-' : String(m.productionVersion),
            Object.entries(m.aliases).map(([a, v]) => `${a}=${v}`).join(',') || '-',
            when(m.updatedAt),
            m.description,
          ]),
        ),
      );
    });
  });

  withCommon(
    models
      .command('show')
      .description('show a model, or one version with name@ref (name@3, name@champion, name@Production)')
      .argument('<reference>', 'name or name@ref'),
  ).action(async (reference: string, _options: unknown, command: Command) => {
    await run(command, async (ctx) => {
      if (reference.includes('@')) {
        const version = await ctx.registry.resolve(reference);
        const profile = version.hasProfile ? await ctx.registry.getProfile(version.name, version.version) : null;
        if (ctx.json) return ctx.printJson({ ...version, profile });
        return ctx.print(versionDetail(version, profile));
      }
      const name = parseReference(reference).name;
      const model = await ctx.registry.getModel(name);
      const versions = await ctx.registry.listVersions(name);
      if (ctx.json) return ctx.printJson({ ...model, versions });
      ctx.print(
        [
          `${model.name}`,
          `  description: ${model.description || '-'}`,
          `  tags:        ${tags(model.tags) || '-'}`,
          `  aliases:     ${Object.entries(model.aliases).map(([a, v]) => `${a} -> ${v}`).join(', ') || '-'}`,
          `  latest:      ${model.latestVersion ?? '-'}`,
          `  production:  ${model.productionVersion ?? '-'}`,
          `  created:     ${when(model.createdAt)}, updated ${when(model.updatedAt)}`,
        ].join('\n'),
      );
      if (versions.length > 0) ctx.print(`\n${versionRows(versions)}`);
    });
  });

  withCommon(models.command('versions').description('list the versions of a model').argument('<name>', 'model name')).action(
    async (name: string, _options: unknown, command: Command) => {
      await run(command, async (ctx) => {
        const versions = await ctx.registry.listVersions(name);
        if (ctx.json) return ctx.printJson(versions);
        ctx.print(versions.length === 0 ? `model '${name}' has no versions` : versionRows(versions));
      });
    },
  );

  withCommon(
    models
      .command('alias')
      .description('point an alias at a version (or delete it with --delete)')
      .argument('<name>', 'model name')
      .argument('<alias>', 'alias, e.g. champion')
      .argument('[version]', 'version number', versionArg)
      .option('--delete', 'delete the alias')
      .addOption(new Option('--expect <version>', "only if the alias points to this version now ('none': not set)").argParser(expectArg)),
  ).action(async (name: string, alias: string, version: number | undefined, _options: unknown, command: Command) => {
    const o = command.opts<{ delete?: boolean; expect?: number | 'none' }>();
    await run(command, async (ctx) => {
      const cas = expectation(o.expect);
      if (o.delete === true) {
        if (version !== undefined) throw new UsageError('--delete takes no version');
        const move = await ctx.registry.deleteAlias(name, alias, cas);
        if (ctx.json) return ctx.printJson(move);
        return ctx.print(`deleted alias ${alias} of ${name} (was version ${move.previous})`);
      }
      if (version === undefined) throw new UsageError('a version is required (or --delete)');
      const move = await ctx.registry.setAlias(name, alias, version, cas);
      if (ctx.json) return ctx.printJson(move);
      ctx.print(
        move.previous === version
          ? `${name}@${alias} already points to version ${version}`
          : `${name}@${alias}: ${move.previous ?? '-'} -> ${version}`,
      );
    });
  });

  withCommon(
    models
      .command('stage')
      .description('move a version to a stage (None, Staging, Production, Archived)')
      .argument('<name>', 'model name')
      .argument('<version>', 'version number', versionArg)
      .argument('<stage>', 'None, Staging, Production or Archived', stageArg)
      .option('--archive-existing', 'archive the other versions in that stage')
      .addOption(new Option('--expect <version>', "only if name@<stage> is this version now ('none': empty)").argParser(expectArg)),
  ).action(async (name: string, version: number, stage: Stage, _options: unknown, command: Command) => {
    const o = command.opts<{ archiveExisting?: boolean; expect?: number | 'none' }>();
    await run(command, async (ctx) => {
      const move = await ctx.registry.transitionStage(name, version, stage, {
        archiveExistingVersions: o.archiveExisting === true,
        ...expectation(o.expect),
      });
      if (ctx.json) return ctx.printJson(move);
      const archived = move.archived.length > 0 ? ` (archived ${move.archived.join(', ')})` : '';
      ctx.print(`${name} version ${version}: ${move.previousStage} -> ${move.stage}${archived}`);
    });
  });

  withCommon(
    models
      .command('archive')
      .description('move a version to the Archived stage')
      .argument('<name>', 'model name')
      .argument('<version>', 'version number', versionArg),
  ).action(async (name: string, version: number, _options: unknown, command: Command) => {
    await run(command, async (ctx) => {
      const move = await ctx.registry.archive(name, version);
      if (ctx.json) return ctx.printJson(move);
      ctx.print(`${name} version ${version}: ${move.previousStage} -> Archived`);
    });
  });

  withCommon(
    models
      .command('delete')
      .description('delete a version, or a whole model when no version is given')
      .argument('<name>', 'model name')
      .argument('[version]', 'version number', versionArg)
      .option('--force', 'also delete versions holding an alias or the Production stage'),
  ).action(async (name: string, version: number | undefined, _options: unknown, command: Command) => {
    const o = command.opts<{ force?: boolean }>();
    await run(command, async (ctx) => {
      if (version !== undefined) {
        await ctx.registry.deleteVersion(name, version, { force: o.force === true });
        if (ctx.json) return ctx.printJson({ deleted: { name, version } });
        return ctx.print(`deleted ${name} version ${version}`);
      }
      const versions = (await ctx.registry.listVersions(name)).map((v) => v.version);
      await ctx.registry.deleteModel(name, { force: o.force === true });
      if (ctx.json) return ctx.printJson({ deleted: { name, versions } });
      ctx.print(`deleted model ${name}${versions.length > 0 ? ` (versions ${versions.join(', ')})` : ''}`);
    });
  });

  withCommon(
    models
      .command('profile')
      .description('profile reference data (usually the training data) and store it with a version: input ranges, and the distributions drift detection compares with')
      .argument('<model>', 'NAME@VERSION, or NAME followed by the version number')
      .argument('[version]', 'version number (when <model> has no @VERSION)')
      .argument('[data]', 'reference data (same as --data)')
      .option('--data <file>', 'reference data: CSV with a header row of column names, or JSONL (one object per row)')
      .addOption(new Option('--exclude <column>', 'a column to leave out, e.g. the label (repeatable)').argParser(collect))
      .addOption(new Option('--output <column>', 'a column holding a model output (predicted label, score): profiled for drift, not an input (repeatable)').argParser(collect))
      .addOption(new Option('--reservoir <n>', 'values per column kept for KS and Wasserstein (default 5000)').argParser(versionArg))
      .option('--score', "run the version's model over the data and profile its outputs too (predicted class and confidence, or values)"),
  ).action(async (model: string, second: string | undefined, third: string | undefined, _options: unknown, command: Command) => {
    const o = command.opts<{ exclude?: string[]; output?: string[]; data?: string; reservoir?: number; score?: boolean }>();
    await run(command, async (ctx) => {
      let name: string;
      let version: number;
      let positional: string | undefined;
      if (model.includes('@')) {
        const resolved = await ctx.registry.resolve(model);
        name = resolved.name;
        version = resolved.version;
        if (third !== undefined) throw new UsageError(`unexpected argument '${third}'`);
        positional = second;
      } else {
        if (second === undefined) throw new UsageError('give the version: NAME@VERSION, or NAME VERSION');
        name = model;
        version = versionArg(second);
        positional = third;
      }
      if (positional !== undefined && o.data !== undefined) throw new UsageError('give the reference data once: as an argument or with --data');
      const file = o.data ?? positional;
      if (file === undefined) throw new UsageError('give the reference data with --data <file>');
      const outputs = o.output ?? [];
      const exclude = o.exclude ?? [];
      const table = await readTable(file);
      const profile = /\.(jsonl|ndjson)$/i.test(file) ? await profileFromTable(table, file, [...exclude, ...outputs]) : await profileFromCsv(file, { exclude: [...exclude, ...outputs] });
      let driftTable = table;
      let driftOutputs = outputs;
      if (o.score) {
        const artifact = await ctx.registry.resolveArtifact(name, String(version));
        const inputs = table.columns.filter((c) => !exclude.includes(c.name) && !outputs.includes(c.name));
        const scored = await scoreWithModel(artifact.path, name, String(version), inputs);
        const clash = scored.find((c) => table.columns.some((t) => t.name === c.name && !exclude.includes(t.name)));
        if (clash) throw new UsageError(`the model's output '${clash.name}' has the name of a data column: --exclude it (a true label) or rename it`);
        driftTable = { rows: table.rows, columns: [...table.columns.filter((c) => !exclude.includes(c.name)), ...scored] };
        driftOutputs = [...outputs, ...scored.map((c) => c.name)];
      }
      profile.drift = buildDriftProfile(driftTable, {
        outputs: driftOutputs,
        exclude: o.score ? [] : exclude,
        ...(o.reservoir !== undefined ? { reservoirSize: o.reservoir } : {}),
      });
      await ctx.registry.setProfile(name, version, profile);
      if (ctx.json) return ctx.printJson(profile);
      ctx.print(`stored an input profile of ${profile.features.length} features (${profile.rows} rows) with ${name} version ${version}`);
      ctx.print(profileRows(profile));
      const drift = profile.drift;
      const outputNames = drift.columns.filter((c) => c.role === 'output').map((c) => c.name);
      ctx.print(
        `drift profile: ${drift.columns.length - outputNames.length} inputs${outputNames.length ? `, outputs ${outputNames.join(', ')}` : ''}; ` +
          `${drift.columns.filter((c) => c.kind === 'categorical').length} categorical; up to ${drift.reservoirSize} sampled values per column`,
      );
    });
  });

  withCommon(
    models
      .command('events')
      .description('show the registry event log, oldest first')
      .argument('[name]', 'only this model')
      .addOption(new Option('--since <id>', 'only events after this id').argParser(eventIdArg))
      .addOption(new Option('--limit <n>', 'at most this many events').argParser(versionArg)),
  ).action(async (name: string | undefined, _options: unknown, command: Command) => {
    const o = command.opts<{ since?: number; limit?: number }>();
    await run(command, async (ctx) => {
      const events = await ctx.registry.events({
        ...(name !== undefined ? { model: name } : {}),
        ...(o.since !== undefined ? { sinceEventId: o.since } : {}),
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
      });
      if (ctx.json) return ctx.printJson(events);
      ctx.print(events.length === 0 ? 'no events' : eventRows(events));
    });
  });
}
