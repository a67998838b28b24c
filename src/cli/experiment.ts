/**
 * `inferd experiment ...`: A/B experiments.
 *
 *   inferd experiment show checkout                          the server's report and decision
 *   inferd experiment sample-size --baseline 0.03 --mde 0.2 --relative [--daily-traffic 5000]
 *   inferd experiment analyse outcomes.csv --baseline-rate 0.03 --mde 0.2   (offline; columns variant,outcome)
 *   inferd experiment feedback fraud r-77 --outcome true
 */
import { readFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { parseTrafficConfig, type ExperimentConfig, type SplitPolicy } from '../routing/config.js';
import { analyseExperiment, minimumDurationDays, outcomesFromCsv, type ExperimentReport } from '../routing/experiment.js';
import { exactStatistics } from '../routing/exact-statistics.js';
import { twoProportionSampleSize } from '../routing/experiment-statistics.js';
import { sampleSizeCohenH } from '../stats/experiments.js';
import { AdminCommand, fmt, runAdmin, table, UsageError, withServer, type Output } from './admin-client.js';

function numberArg(name: string, min: number, max: number, exclusive = true) {
  return (text: string): number => {
    const value = Number(text);
    const ok = text.trim() !== '' && Number.isFinite(value) && (exclusive ? value > min && value < max : value >= min && value <= max);
    if (!ok) throw new InvalidArgumentError(`${name} must be a number in ${exclusive ? '(' : '['}${min}, ${max}${exclusive ? ')' : ']'}, got '${text}'`);
    return value;
  };
}

export function formatReport(r: ExperimentReport): string {
  const lines = [`experiment ${r.name} on model ${r.model} (${r.metric}, control ${r.control}, alpha ${r.alpha}, power ${r.power})`];
  lines.push(
    table(
      ['VARIANT', 'VERSION', 'WEIGHT', 'SERVED', 'OUTCOMES', r.metric === 'binary' ? 'RATE' : 'MEAN'],
      r.variants.map((v) => [v.variant, v.version, `${fmt(v.weight)}%`, String(v.served), String(v.outcomes), fmt(v.rate)]),
    ).trimEnd(),
  );
  for (const c of r.comparisons) {
    lines.push(
      `${c.treatment} vs ${c.control}: ${c.test} statistic ${fmt(c.statistic)}, p ${fmt(c.pValue)}, difference ${fmt(c.difference)} [${fmt(c.interval[0])}, ${fmt(c.interval[1])}]${c.significant ? ' significant' : ''}`,
    );
  }
  if (r.categorical !== null) {
    const c = r.categorical;
    lines.push(`labels (${c.variants.length} variants x ${c.categories.length} categories):`);
    lines.push(table(['VARIANT', ...c.categories.map((x) => x.toUpperCase())], c.variants.map((v, i) => [v, ...c.counts[i]!.map(String)])).trimEnd());
    lines.push(`chi-square (Pearson, no continuity correction) ${fmt(c.statistic)}, dof ${c.dof}, p ${fmt(c.pValue)}${c.significant ? ` significant at alpha ${c.alpha}` : ''}`);
  } else if (r.categoricalNote !== null && r.categoricalNote !== 'no labelled feedback') {
    lines.push(`labels: no chi-square test: ${r.categoricalNote}`);
  }
  lines.push(`required sample per group: ${r.requiredSamplePerGroup ?? '-'}${r.requiredSamplePerGroup !== null ? (r.sampleReached ? ' (reached)' : ' (not reached)') : ''}`);
  if (r.requiredSamplePerGroupCohenH !== null) lines.push(`required sample per group, Cohen's h form: ${r.requiredSamplePerGroupCohenH}`);
  if (r.minimumDays !== null) lines.push(`minimum duration: ${r.minimumDays} days`);
  lines.push(`decision: ${r.decision}${r.winner !== null ? ` (${r.winner})` : ''}: ${r.reason}`);
  return lines.join('\n') + '\n';
}

function print(out: Output, report: ExperimentReport): void {
  if (out.json) out.printJson(report);
  else out.print(formatReport(report));
}

export function registerExperimentCommand(program: Command): void {
  const experiment = new AdminCommand('experiment');
  experiment.copyInheritedSettings(program);
  experiment.description('A/B experiments: reports, sample sizes, offline analysis');
  program.addCommand(experiment);

  withServer(experiment.command('show').description("a running server's report and decision").argument('<name>')).action(async (name: string, _o: unknown, command: Command) =>
    runAdmin(command, async (out, client) => print(out, await client().get<ExperimentReport>(`/v2/admin/experiments/${encodeURIComponent(name)}`))),
  );

  withServer(
    experiment
      .command('feedback')
      .description('report the observed outcome of a request (joined to the variant that served it)')
      .argument('<model>')
      .argument('<request-id>')
      .option('--outcome <x>', 'a number, or true/false (converted / not)')
      .option('--label <label>', 'the observed label')
      .option('--version <v>', 'the version that served it, when the server did not route it'),
  ).action(async (model: string, requestId: string, _o: unknown, command: Command) => {
    const o = command.opts<{ outcome?: string; label?: string; version?: string }>();
    await runAdmin(command, async (out, client) => {
      if (o.outcome === undefined && o.label === undefined) throw new UsageError('give --outcome or --label');
      let outcome: number | boolean | undefined;
      if (o.outcome !== undefined) {
        outcome = o.outcome === 'true' ? true : o.outcome === 'false' ? false : Number(o.outcome);
        if (typeof outcome === 'number' && (o.outcome.trim() === '' || !Number.isFinite(outcome))) throw new UsageError(`--outcome must be a number or true/false, got '${o.outcome}'`);
      }
      const body = { request_id: requestId, ...(outcome !== undefined ? { outcome } : {}), ...(o.label !== undefined ? { label: o.label } : {}), ...(o.version !== undefined ? { version: o.version } : {}) };
      const result = await client().post<{ variant: string; version: string }>(`/v2/models/${encodeURIComponent(model)}/feedback`, body);
      if (out.json) return out.printJson(result);
      out.print(`recorded for ${requestId}: variant ${result.variant} (version ${result.version})`);
    });
  });

  experiment
    .command('sample-size')
    .description("per-group sample size of a two-proportion test and in the Cohen's h form (offline)")
    .requiredOption('--baseline <p>', 'control conversion rate', numberArg('--baseline', 0, 1))
    .requiredOption('--mde <x>', 'minimum detectable effect', numberArg('--mde', 0, Number.MAX_VALUE))
    .option('--relative', 'the effect is relative to the baseline (0.2 = +20%); the default')
    .option('--absolute', 'the effect is in rate points (0.006 = +0.6 points)')
    .option('--alpha <a>', 'two-sided significance level', numberArg('--alpha', 0, 1), 0.05)
    .option('--power <p>', 'power', numberArg('--power', 0, 1), 0.8)
    .option('--groups <n>', 'number of variants', numberArg('--groups', 1, 1000), 2)
    .option('--daily-traffic <n>', 'requests per day over all variants, for the minimum duration', numberArg('--daily-traffic', 0, Number.MAX_VALUE))
    .option('--json', 'print JSON')
    .action(async (_o: unknown, command: Command) => {
      const o = command.opts<{ baseline: number; mde: number; relative?: boolean; absolute?: boolean; alpha: number; power: number; groups: number; dailyTraffic?: number }>();
      await runAdmin(command, async (out) => {
        if (o.relative === true && o.absolute === true) throw new UsageError('give --relative or --absolute, not both');
        const relative = o.absolute !== true;
        let perGroup: number;
        let cohenH: number;
        try {
          perGroup = twoProportionSampleSize(o.baseline, o.mde, { relative, alpha: o.alpha, power: o.power });
          cohenH = sampleSizeCohenH({ baseline: o.baseline, mde: o.mde, relative, alpha: o.alpha, power: o.power }).perGroup;
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        const groups = Math.round(o.groups);
        const days = o.dailyTraffic === undefined ? null : minimumDurationDays(perGroup, o.dailyTraffic, Array.from({ length: groups }, () => 1));
        const treatment = relative ? o.baseline * (1 + o.mde) : o.baseline + o.mde;
        const result = {
          baseline: o.baseline,
          treatment,
          relative,
          alpha: o.alpha,
          power: o.power,
          per_group: perGroup,
          total: perGroup * groups,
          per_group_cohen_h: cohenH,
          total_cohen_h: cohenH * groups,
          minimum_days: days,
        };
        if (out.json) return out.printJson(result);
        out.print(`${perGroup} per group (${perGroup * groups} in total) to detect ${fmt(o.baseline)} -> ${fmt(treatment)} at alpha ${o.alpha}, power ${o.power} (two-proportion test)`);
        out.print(`${cohenH} per group (${cohenH * groups} in total) in the Cohen's h form (normal power of h = 2 asin sqrt(p2) - 2 asin sqrt(p1))`);
        if (days !== null) out.print(`minimum duration: ${days} days`);
      });
    });

  experiment
    .command('analyse')
    .alias('analyze')
    .description('analyse a CSV of outcomes offline (columns: variant,outcome; a non-numeric outcome is a label)')
    .argument('<csv>', 'file with a header row naming variant and outcome')
    .option('--metric <kind>', 'binary or continuous', 'binary')
    .option('--control <variant>', 'the control variant (default: the first in the file)')
    .option('--baseline-rate <p>', 'expected control rate, for the sample size', numberArg('--baseline-rate', 0, 1))
    .option('--mde <x>', 'minimum detectable effect', numberArg('--mde', 0, Number.MAX_VALUE))
    .option('--absolute', 'the effect is absolute (default relative)')
    .option('--alpha <a>', 'significance level', numberArg('--alpha', 0, 1), 0.05)
    .option('--power <p>', 'power', numberArg('--power', 0, 1), 0.8)
    .option('--json', 'print JSON')
    .action(async (file: string, _o: unknown, command: Command) => {
      const o = command.opts<{ metric: string; control?: string; baselineRate?: number; mde?: number; absolute?: boolean; alpha: number; power: number }>();
      await runAdmin(command, async (out) => {
        if (o.metric !== 'binary' && o.metric !== 'continuous') throw new UsageError(`--metric must be binary or continuous, got '${o.metric}'`);
        const outcomes = outcomesFromCsv(await readFile(file, 'utf8'));
        if (outcomes.length < 2) throw new UsageError(`${file}: needs outcomes of at least two variants, found ${outcomes.length}`);
        const share = 100 / outcomes.length;
        const policy = parseTrafficConfig(
          {
            split: {
              variants: outcomes.map((x) => ({ name: x.variant, version: x.variant, weight: share })),
              experiment: {
                name: file,
                metric: o.metric,
                alpha: o.alpha,
                power: o.power,
                relative: o.absolute !== true,
                min_days: 0,
                ...(o.control !== undefined ? { control: o.control } : {}),
                ...(o.baselineRate !== undefined ? { baseline_rate: o.baselineRate } : {}),
                ...(o.mde !== undefined ? { mde: o.mde } : {}),
              },
            },
          },
          'offline',
        ).routing as SplitPolicy & { experiment: ExperimentConfig };
        print(out, analyseExperiment('offline', policy, outcomes, exactStatistics, { startedAt: null, now: Date.now() }));
      });
    });
}
