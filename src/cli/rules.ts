/**
 * `inferd rules`: prints (or writes) the Prometheus recording and alerting rules of the SLOs.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import type { MetricsConfig, SloConfig } from '../observability/config.js';
import { generateRules } from '../observability/rules.js';

interface RulesCliOptions {
  config?: string;
  output?: string;
}

/** The `metrics` and `slo` sections of the server configuration (file, then INFERD_* variables). */
export function loadRulesConfig(file: string | undefined): { metrics: MetricsConfig; slo: SloConfig } {
  // The same loader as `inferd serve`, so the rules always match what the server measures.
  const { metrics, slo } = loadConfig({ file });
  return { metrics, slo };
}

export function registerRulesCommand(program: Command): Command {
  return program
    .command('rules')
    .description('print the Prometheus recording and alerting rules for the configured SLOs')
    .option('-c, --config <file>', 'configuration file (YAML or JSON) whose metrics and slo sections are used')
    .option('-o, --output <file>', 'write the rules to this file instead of standard output')
    .action(function (this: Command, options: RulesCliOptions) {
      let text: string;
      try {
        const { metrics, slo } = loadRulesConfig(options.config);
        text = generateRules(slo, metrics.latencyBuckets);
      } catch (error) {
        this.error(error instanceof Error ? error.message : String(error), { exitCode: 2 });
      }
      if (options.output === undefined) process.stdout.write(text);
      else writeFileSync(options.output, text);
    });
}
