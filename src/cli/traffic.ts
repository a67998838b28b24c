/**
 * `inferd traffic ...`: a running server's traffic policies through its admin API
 * (`GET`/`PUT /v2/admin/models/{m}/traffic`).
 *
 *   inferd traffic show [model]
 *   inferd traffic split fraud control=1:50 treatment=2:50 [--sticky-header x-user-id]
 *   inferd traffic canary start fraud --baseline 1 --canary 2 [--steps 5:15m,25:30m,50:1h,100]
 *   inferd traffic canary pause|resume|promote [--full]|abort fraud
 *   inferd traffic blue-green fraud --active 1 --standby 2 [--keep-warm 10m]
 *   inferd traffic switch fraud [--rollback]
 *   inferd traffic shadow fraud --version 3 --percent 10 | --off
 *   inferd traffic clear fraud
 */
import { Command, InvalidArgumentError } from 'commander';
import type { CanaryState } from '../routing/canary.js';
import type { TrafficConfig } from '../routing/config.js';
import type { TrafficView } from '../routing/service.js';
import type { ShadowStats } from '../routing/shadow.js';
import { AdminCommand, AdminHttpError, fmt, runAdmin, table, UsageError, withServer, type AdminClient, type Output } from './admin-client.js';

function trafficPath(model: string): string {
  return `/v2/admin/models/${encodeURIComponent(model)}/traffic`;
}

function numberArg(name: string, min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || value < min || value > max) throw new InvalidArgumentError(`${name} must be a number from ${min} to ${max}, got '${text}'`);
    return value;
  };
}

/** `name=version:weight` or `version:weight`. */
export function parseVariantSpec(text: string): { name?: string; version: string; weight: number } {
  const match = /^(?:([A-Za-z0-9_.-]+)=)?([^:=\s]+):([0-9]+(?:\.[0-9]+)?)$/.exec(text);
  if (match === null) throw new InvalidArgumentError(`'${text}' is not a variant; write name=version:weight or version:weight (e.g. control=1:50)`);
  return { ...(match[1] !== undefined ? { name: match[1] } : {}), version: match[2]!, weight: Number(match[3]) };
}

/** `5:15m,25:30m,50:1h,100`: weight and pause per step. */
export function parseSteps(text: string): Array<{ weight: number; pause?: string }> {
  return text.split(',').map((part) => {
    const match = /^\s*([0-9]+(?:\.[0-9]+)?)(?::([0-9.]+(?:ms|s|m|h|d)?))?\s*$/.exec(part);
    if (match === null) throw new InvalidArgumentError(`'${part}' is not a step; write weight[:pause], e.g. 5:15m`);
    return { weight: Number(match[1]), ...(match[2] !== undefined ? { pause: match[2] } : {}) };
  });
}

async function current(client: AdminClient, model: string): Promise<{ policy: TrafficConfig; revision: number }> {
  try {
    const view = await client.get<TrafficView>(trafficPath(model));
    return { policy: view.policy, revision: view.revision };
  } catch (error) {
    if (error instanceof AdminHttpError && error.status === 404) return { policy: {}, revision: 0 };
    throw error;
  }
}

/** Reads the policy, changes one part, writes it back unless someone else changed it meanwhile. */
async function update(client: AdminClient, model: string, change: (policy: TrafficConfig) => TrafficConfig): Promise<TrafficView> {
  const { policy, revision } = await current(client, model);
  const next = change(structuredClone(policy));
  return client.put<TrafficView>(trafficPath(model), { policy: Object.keys(next).length === 0 ? null : next, expected_revision: revision });
}

function routingOnly(policy: TrafficConfig): TrafficConfig {
  return policy.shadow === undefined ? {} : { shadow: policy.shadow };
}

function canaryLine(c: CanaryState): string {
  const last = c.measurements[c.measurements.length - 1];
  const parts = [`canary: ${c.phase}, step ${c.stepIndex + 1}, weight ${fmt(c.weight)}%`, `failed ${c.failed}, inconclusive ${c.inconclusive}, errors in a row ${c.consecutiveErrors}`];
  if (last !== undefined) {
    const checks = last.checks.map((k) => `${k.name} ${fmt(k.value)}${k.passed ? ' ok' : ` > ${k.limit}`}`).join(', ');
    parts.push(`last measurement ${last.outcome}${checks ? ` (${checks})` : last.message ? ` (${last.message})` : ''}`);
  }
  if (c.reason !== undefined) parts.push(`reason: ${c.reason}`);
  return parts.join('; ');
}

function shadowLine(s: ShadowStats): string {
  const compare = [
    s.agreementRate !== null ? `agreement ${fmt(s.agreementRate)} over ${s.labelComparisons}` : undefined,
    s.meanAbsoluteError !== null ? `MAE ${fmt(s.meanAbsoluteError)} (max ${fmt(s.maxAbsoluteError)}) over ${s.valueComparisons}` : undefined,
  ].filter((x) => x !== undefined);
  return (
    `shadow: version ${s.version} at ${fmt(s.percent)}%: mirrored ${s.mirrored}, completed ${s.completed}, errors ${s.errors}, timeouts ${s.timeouts}, dropped ${s.dropped}` +
    (compare.length > 0 ? `; ${compare.join(', ')}` : '') +
    `; p99 ${fmt(s.latencyMs.primary.p99)} ms caller / ${fmt(s.latencyMs.shadow.p99)} ms shadow`
  );
}

export function formatView(view: TrafficView): string {
  const lines = [`model ${view.model} (revision ${view.revision}, from ${view.source})`];
  if (view.variants.length > 0) lines.push(table(['VARIANT', 'VERSION', 'WEIGHT'], view.variants.map((v) => [v.name, v.version, `${fmt(v.weight)}%`])).trimEnd());
  if (view.canary !== undefined) {
    lines.push(canaryLine(view.canary));
    // Only the replica holding the lease measures and steps; the others apply what it stores.
    if (view.controller !== undefined) lines.push(`analysis: ${view.controller.leader ? 'driven by this replica' : 'followed from the replica that drives it'} (${view.controller.replica})`);
  }
  if (view.blueGreen !== undefined && view.blueGreen.previous !== undefined) {
    lines.push(`blue-green: switched from ${view.blueGreen.previous}, kept warm until ${new Date(view.blueGreen.warmUntil ?? 0).toISOString()}`);
  }
  if (view.shadow !== undefined) lines.push(shadowLine(view.shadow));
  else if (view.policy.shadow !== undefined) lines.push(`shadow: version ${view.policy.shadow.version} at ${fmt(view.policy.shadow.percent)}% (not running on this server)`);
  return lines.join('\n') + '\n';
}

function show(out: Output, view: TrafficView): void {
  if (out.json) out.printJson(view);
  else out.print(formatView(view));
}

export function registerTrafficCommand(program: Command): void {
  const traffic = new AdminCommand('traffic');
  traffic.copyInheritedSettings(program);
  traffic.description("a running server's traffic policies: A/B splits, canaries, blue-green switches, shadows");
  program.addCommand(traffic);

  withServer(traffic.command('show').description('policies and their state').argument('[model]', 'one model (default: all models with a policy)')).action(
    async (model: string | undefined, _o: unknown, command: Command) =>
      runAdmin(command, async (out, client) => {
        if (model !== undefined) return show(out, await client().get<TrafficView>(trafficPath(model)));
        const list = await client().get<{ models: Array<{ model: string; variants: TrafficView['variants'] }> }>('/v2/admin/traffic');
        if (out.json) return out.printJson(list);
        out.print(list.models.length === 0 ? 'no traffic policies\n' : table(['MODEL', 'VARIANTS'], list.models.map((m) => [m.model, m.variants.map((v) => `${v.name}=${v.version}:${fmt(v.weight)}%`).join(' ')])));
      }),
  );

  withServer(
    traffic
      .command('split')
      .description('split traffic by weight (an A/B test with --experiment)')
      .argument('<model>')
      .argument('<variants...>', 'name=version:weight or version:weight; weights sum to 100')
      .option('--sticky-header <name>', 'keep a caller on one variant by this header / gRPC metadata key')
      .option('--sticky-param <name>', 'keep a caller on one variant by this request parameter')
      .option('--experiment <name>', 'analyse it as an experiment under this name')
      .option('--metric <kind>', 'experiment metric: binary or continuous', 'binary')
      .option('--baseline-rate <p>', 'expected control rate (binary), for the sample size', numberArg('--baseline-rate', 0, 1))
      .option('--mde <x>', 'minimum detectable effect', numberArg('--mde', 0, Number.MAX_VALUE))
      .option('--absolute', 'the effect is absolute (default relative)')
      .option('--daily-traffic <n>', 'requests per day, for the minimum duration', numberArg('--daily-traffic', 0, Number.MAX_VALUE)),
  ).action(async (model: string, specs: string[], _o: unknown, command: Command) => {
    const o = command.opts<{ stickyHeader?: string; stickyParam?: string; experiment?: string; metric: string; baselineRate?: number; mde?: number; absolute?: boolean; dailyTraffic?: number }>();
    await runAdmin(command, async (out, client) => {
      if (o.stickyHeader !== undefined && o.stickyParam !== undefined) throw new UsageError('give --sticky-header or --sticky-param, not both');
      const variants = specs.map((s) => {
        try {
          return parseVariantSpec(s);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
      });
      const split: NonNullable<TrafficConfig['split']> = { variants };
      if (o.stickyHeader !== undefined) split.sticky = { header: o.stickyHeader };
      if (o.stickyParam !== undefined) split.sticky = { parameter: o.stickyParam };
      if (o.experiment !== undefined) {
        if (o.metric !== 'binary' && o.metric !== 'continuous') throw new UsageError(`--metric must be binary or continuous, got '${o.metric}'`);
        split.experiment = {
          name: o.experiment,
          metric: o.metric,
          alpha: 0.05,
          power: 0.8,
          relative: o.absolute !== true,
          min_days: 14,
          ...(o.baselineRate !== undefined ? { baseline_rate: o.baselineRate } : {}),
          ...(o.mde !== undefined ? { mde: o.mde } : {}),
          ...(o.dailyTraffic !== undefined ? { daily_traffic: o.dailyTraffic } : {}),
        };
      }
      show(out, await update(client(), model, (p) => ({ ...routingOnly(p), split })));
    });
  });

  const canary = traffic.command('canary').description('progressive delivery with automated analysis and rollback');
  withServer(
    canary
      .command('start')
      .description('start a canary of one version against another')
      .argument('<model>')
      .requiredOption('--baseline <version>', 'the version serving now')
      .requiredOption('--canary <version>', 'the new version')
      .option('--steps <list>', 'weight:pause steps (default 5:15m,25:30m,50:1h,100)')
      .option('--interval <duration>', 'analysis interval (default 1m)')
      .option('--failure-limit <n>', 'failed measurements tolerated before rollback', numberArg('--failure-limit', 0, 1000))
      .option('--min-requests <n>', 'canary requests per interval for a conclusive measurement', numberArg('--min-requests', 1, 1e9))
      .option('--max-error-rate <x>', 'canary error rate ceiling', numberArg('--max-error-rate', 0, 1))
      .option('--max-p99-ms <ms>', 'canary p99 latency ceiling', numberArg('--max-p99-ms', 0, 1e9))
      .option('--sticky-header <name>', 'keep a caller on one side by this header'),
  ).action(async (model: string, _o: unknown, command: Command) => {
    const o = command.opts<{ baseline: string; canary: string; steps?: string; interval?: string; failureLimit?: number; minRequests?: number; maxErrorRate?: number; maxP99Ms?: number; stickyHeader?: string }>();
    await runAdmin(command, async (out, client) => {
      let steps;
      try {
        steps = o.steps === undefined ? undefined : parseSteps(o.steps);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      const analysis = {
        ...(o.interval !== undefined ? { interval: o.interval } : {}),
        ...(o.failureLimit !== undefined ? { failure_limit: o.failureLimit } : {}),
        ...(o.minRequests !== undefined ? { min_requests: o.minRequests } : {}),
        ...(o.maxErrorRate !== undefined ? { max_error_rate: o.maxErrorRate } : {}),
        ...(o.maxP99Ms !== undefined ? { max_p99_ms: o.maxP99Ms } : {}),
      };
      const spec = {
        baseline: o.baseline,
        canary: o.canary,
        ...(steps !== undefined ? { steps } : {}),
        ...(Object.keys(analysis).length > 0 ? { analysis } : {}),
        ...(o.stickyHeader !== undefined ? { sticky: { header: o.stickyHeader } } : {}),
      } as NonNullable<TrafficConfig['canary']>;
      show(out, await update(client(), model, (p) => ({ ...routingOnly(p), canary: spec })));
    });
  });
  for (const [name, description] of [
    ['pause', 'hold the canary at its weight'],
    ['resume', 'continue a paused canary'],
    ['promote', 'go to the next step now (--full: straight to 100%)'],
    ['abort', 'send the canary nothing (weight 0)'],
  ] as const) {
    const sub = withServer(canary.command(name).description(description).argument('<model>').option('--reason <text>', 'recorded with the event'));
    if (name === 'promote') sub.option('--full', 'promote to 100% at once');
    sub.action(async (model: string, _o: unknown, command: Command) => {
      const o = command.opts<{ reason?: string; full?: boolean }>();
      await runAdmin(command, async (out, client) => {
        const action = name === 'promote' && o.full === true ? 'promote_full' : name;
        show(out, await client().put<TrafficView>(trafficPath(model), { action, ...(o.reason !== undefined ? { reason: o.reason } : {}) }));
      });
    });
  }

  withServer(
    traffic
      .command('blue-green')
      .description('serve one version, keep another warm for an atomic switch')
      .argument('<model>')
      .requiredOption('--active <version>', 'the version serving')
      .requiredOption('--standby <version>', 'the version to switch to')
      .option('--keep-warm <duration>', 'how long the old version stays loaded after a switch (default 10m)'),
  ).action(async (model: string, _o: unknown, command: Command) => {
    const o = command.opts<{ active: string; standby: string; keepWarm?: string }>();
    await runAdmin(command, async (out, client) => {
      const blue_green = { active: o.active, standby: o.standby, ...(o.keepWarm !== undefined ? { keep_warm: o.keepWarm } : {}) };
      show(out, await update(client(), model, (p) => ({ ...routingOnly(p), blue_green })));
    });
  });

  withServer(
    traffic
      .command('switch')
      .description('blue-green: swap the active and standby versions at once')
      .argument('<model>')
      .option('--rollback', 'switch back to the version before the last switch')
      .option('--reason <text>', 'recorded with the event'),
  ).action(async (model: string, _o: unknown, command: Command) => {
    const o = command.opts<{ rollback?: boolean; reason?: string }>();
    await runAdmin(command, async (out, client) => {
      show(out, await client().put<TrafficView>(trafficPath(model), { action: o.rollback === true ? 'rollback' : 'switch', ...(o.reason !== undefined ? { reason: o.reason } : {}) }));
    });
  });

  withServer(
    traffic
      .command('shadow')
      .description('mirror a share of requests to a version, off the callers’ path, and compare')
      .argument('<model>')
      .option('--version <version>', 'the shadow version')
      .option('--percent <p>', 'share of requests mirrored', numberArg('--percent', 0, 100))
      .option('--timeout <duration>', 'abandon a mirrored request after this long (default 5s)')
      .option('--compare <how>', 'auto or argmax')
      .option('--batch-window <duration>', 'gather mirrored requests this long and run them as one batch; 0 runs each alone (default 20ms)')
      .option('--nice <n>', "scheduling priority of the shadow version's worker threads, 0-19 (default 10; 0: the server's own)", numberArg('--nice', 0, 19))
      .option('--off', 'stop mirroring'),
  ).action(async (model: string, _o: unknown, command: Command) => {
    const o = command.opts<{ version?: string; percent?: number; timeout?: string; compare?: string; batchWindow?: string; nice?: number; off?: boolean }>();
    await runAdmin(command, async (out, client) => {
      if (o.off === true && (o.version !== undefined || o.percent !== undefined)) throw new UsageError('--off takes no --version or --percent');
      if (o.off !== true && (o.version === undefined || o.percent === undefined)) throw new UsageError('give --version and --percent, or --off');
      if (o.compare !== undefined && o.compare !== 'auto' && o.compare !== 'argmax') throw new UsageError(`--compare must be auto or argmax, got '${o.compare}'`);
      show(
        out,
        await update(client(), model, (p) => {
          if (o.off === true) {
            delete p.shadow;
            return p;
          }
          return {
            ...p,
            shadow: {
              version: o.version!,
              percent: o.percent!,
              queue_size: 256,
              concurrency: 2,
              max_batch: 64,
              compare: (o.compare ?? 'auto') as 'auto' | 'argmax',
              ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
              ...(o.batchWindow !== undefined ? { batch_window: o.batchWindow } : {}),
              ...(o.nice !== undefined ? { nice: o.nice } : {}),
            },
          };
        }),
      );
    });
  });

  withServer(traffic.command('clear').description("remove the model's run-time policy (the configured one, if any, applies again)").argument('<model>')).action(
    async (model: string, _o: unknown, command: Command) =>
      runAdmin(command, async (out, client) => {
        const result = await client().put<unknown>(trafficPath(model), { policy: null });
        if (out.json) out.printJson(result);
        else out.print(`traffic policy of ${model} removed\n`);
      }),
  );
}
