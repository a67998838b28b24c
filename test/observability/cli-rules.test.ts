import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { registerRulesCommand } from '../../src/cli/rules.js';
import { validateMetricsConfig, validateSloConfig } from '../../src/observability/config.js';
import { generateRules } from '../../src/observability/rules.js';
import { promtool } from './promtool.js';

const work = mkdtempSync(join(tmpdir(), 'inferd-cli-rules-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function program(): { program: Command; errors: () => string } {
  let errors = '';
  const root = new Command('inferd').exitOverride().configureOutput({ writeErr: (text) => (errors += text), writeOut: () => {} });
  registerRulesCommand(root);
  return { program: root, errors: () => errors };
}

describe('inferd rules', () => {
  test('writes the rules of a config file to -o, and promtool accepts them', async () => {
    const config = join(work, 'inferd.yaml');
    writeFileSync(
      config,
      [
        'server: { http_port: 8080 }   # the whole server configuration; rules use metrics and slo',
        'metrics:',
        '  latency_buckets: [0.01, 0.05, 0.2, 1, 5]',
        'slo:',
        '  errors: { objective: 0.9995 }',
        '  latency:',
        '    - { threshold_seconds: 0.2, objective: 0.99 }',
        '  availability: { job: inferd-prod }',
        '',
      ].join('\n'),
    );
    const output = join(work, 'rules.yml');
    const { program: root } = program();
    await root.parseAsync(['rules', '--config', config, '-o', output], { from: 'user' });

    const text = readFileSync(output, 'utf8');
    const buckets = [0.01, 0.05, 0.2, 1, 5];
    const slo = validateSloConfig({ errors: { objective: 0.9995 }, latency: [{ thresholdSeconds: 0.2, objective: 0.99 }], availability: { job: 'inferd-prod' } }, buckets);
    expect(text).toBe(generateRules(slo, validateMetricsConfig({ latencyBuckets: buckets }).latencyBuckets));
    expect(text).toContain('le="0.2"');
    expect(text).toContain('up{job="inferd-prod"}');
    expect(text).toContain('(14.4 * 0.0005)');
    expect(promtool('check', 'rules', output).status).toBe(0);
  });

  test('prints the default rules to standard output without a config', async () => {
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await program().program.parseAsync(['rules'], { from: 'user' });
      expect(write).toHaveBeenCalledWith(generateRules());
    } finally {
      write.mockRestore();
    }
  });

  test('a bad config fails with every problem named, and writes nothing', async () => {
    const config = join(work, 'bad.yaml');
    writeFileSync(config, 'slo:\n  latency:\n    - { threshold_seconds: 0.3, objective: 0.99 }\n  objectve: 0.99\n');
    const output = join(work, 'never.yml');
    const { program: root, errors } = program();
    const failure = await root.parseAsync(['rules', '-c', config, '-o', output], { from: 'user' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CommanderError);
    expect((failure as CommanderError).exitCode).toBe(2);
    expect(errors()).toContain('slo.objectve is not a known key');
    expect(errors()).toContain('threshold_seconds 0.3 is not a latency bucket bound');
    expect(() => readFileSync(output)).toThrow();
  });
});
