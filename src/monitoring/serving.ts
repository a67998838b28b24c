/**
 * Drift monitoring of a running server: one DriftMonitor per served model version whose config
 * has a `drift:` section and that has a reference profile, fed by the capture policy of the
 * request pipeline, judged in one shared worker pool.
 *
 * The profile comes from `drift.reference` (training data profiled when the version is first
 * seen; relative to the model's directory, or to the working directory for a registry model),
 * or else from the drift profile stored in the registry with the version
 * (`inferd models profile NAME@VERSION --data train.csv`). A timer closes time-based windows,
 * sets up monitors for newly loaded versions and drops those of versions that were unloaded
 * (with their metric series). A version whose monitor cannot be set up serves normally; the drift
 * endpoint says why it is not watched, and the set-up is retried now and then (a profile may be
 * stored later).
 */
import { stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { ConfigError } from '../config/validate.js';
import type { Tensor } from '../core/types.js';
import type { ModelManager } from '../models/manager.js';
import type { ModelVersion } from '../models/model-version.js';
import type { RegistryLink } from '../models/registry-link.js';
import type { Metrics } from '../observability/metrics.js';
import type { ServingPlane } from '../pipeline/types.js';
import { driftRoutes } from '../server/admin/drift.js';
import { CapturePolicy, type CaptureDropReason, type CaptureTarget } from '../pipeline/policies/capture.js';
import { driftSettings, type DriftConfig } from './config.js';
import { DriftMetrics } from './metrics.js';
import { DriftMonitor } from './monitor.js';
import { DriftComputePool } from './pool.js';
import { validateDriftProfile, type DriftProfile } from './profile.js';

export interface DriftServingParts {
  manager: ModelManager;
  /** The server's metrics; drift series go on its registry when metrics are on. */
  metrics?: Metrics;
  registry?: RegistryLink;
  logger?: Logger;
  /** How often windows are checked for age and versions for load/unload (default 1,000 ms). */
  tickMs?: number;
  /** How long a failed set-up waits before it is tried again (default 60,000 ms). */
  retryMs?: number;
  /** Requests captured and not yet handed to a window, at most (default 1024). */
  maxPending?: number;
}

/** One served version's drift state, as the admin endpoint shows it. */
export interface VersionDrift {
  version: ModelVersion;
  status: 'starting' | 'watching' | 'unavailable';
  reason?: string;
  monitor?: DriftMonitor;
  target?: VersionTarget;
  profileSource?: string;
}

interface Entry extends VersionDrift {
  alive: boolean;
  retryAt: number;
}

class VersionTarget implements CaptureTarget {
  capturedRows = 0;
  droppedRequests = 0;

  constructor(
    readonly input: string,
    readonly width: number,
    readonly sampleRate: number,
    private readonly entry: Entry,
    private readonly metrics: DriftMetrics | undefined,
  ) {}

  observe(input: Tensor, outputs: readonly Tensor[]): void {
    if (!this.entry.alive) return;
    this.entry.monitor!.observeResponse(input, outputs);
    const rows = (input.data as ArrayLike<number>).length / this.width;
    this.capturedRows += rows;
    this.metrics?.captured(this.entry.version.name, this.entry.version.version, rows);
  }

  dropped(reason: CaptureDropReason): void {
    this.droppedRequests++;
    if (this.entry.alive) this.metrics?.captureDrop(this.entry.version.name, this.entry.version.version, reason);
  }
}

export class DriftServing {
  readonly policy: CapturePolicy;
  readonly metrics: DriftMetrics | undefined;
  private readonly entries = new Map<ModelVersion, Entry>();
  private pool: DriftComputePool | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly profiles = new Map<string, Promise<DriftProfile>>();
  private closed = false;

  constructor(private readonly parts: DriftServingParts) {
    this.metrics = parts.metrics?.enabled ? new DriftMetrics(parts.metrics.registry) : undefined;
    this.policy = new CapturePolicy({ targetFor: (v) => this.targetFor(v) }, parts.maxPending !== undefined ? { maxPending: parts.maxPending } : {});
    this.timer = setInterval(() => this.tick(), parts.tickMs ?? 1000);
    this.timer.unref();
  }

  get manager(): ModelManager {
    return this.parts.manager;
  }

  /** The admin route (GET /v2/admin/models/{m}/drift), as a REST plugin. */
  get adminRoutes(): (app: FastifyInstance, plane: ServingPlane) => void {
    return driftRoutes(this);
  }

  /** The capture target of a served version; starts setting one up when there is none yet. */
  targetFor(version: ModelVersion): CaptureTarget | undefined {
    if (version.config.drift === undefined || this.closed) return undefined;
    const entry = this.entries.get(version);
    if (entry) return entry.target;
    this.start(version);
    return undefined;
  }

  /** Drift state of every served version of a model that has a `drift:` section. */
  versionsOf(model: string): VersionDrift[] {
    return [...this.entries.values()].filter((e) => e.alive && e.version.name === model).sort((a, b) => Number(a.version.version) - Number(b.version.version));
  }

  /** Closes time-based windows; follows loads and unloads. */
  tick(): void {
    if (this.closed) return;
    const live = new Set(this.parts.manager.serving.loaded().filter((v) => v.state === 'READY'));
    for (const [version, entry] of this.entries) {
      if (!live.has(version)) this.drop(entry);
      else if (entry.monitor) entry.monitor.tick();
      else if (entry.status === 'unavailable' && Date.now() >= entry.retryAt) {
        this.entries.delete(version);
        this.start(version);
      }
    }
    for (const version of live) if (version.config.drift !== undefined && !this.entries.has(version)) this.start(version);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.policy.close();
    for (const entry of this.entries.values()) entry.alive = false;
    this.entries.clear();
    await this.pool?.close().catch(() => undefined);
  }

  private start(version: ModelVersion): void {
    const retryMs = this.parts.retryMs ?? 60_000;
    const entry: Entry = { version, status: 'starting', alive: true, retryAt: 0 };
    this.entries.set(version, entry);
    this.setUp(entry).catch((error: unknown) => {
      entry.status = 'unavailable';
      entry.reason = (error as Error).message;
      entry.retryAt = Date.now() + retryMs;
      this.parts.logger?.warn({ model: version.name, version: version.version, reason: entry.reason }, 'drift monitoring unavailable for this version');
    });
  }

  private async setUp(entry: Entry): Promise<void> {
    const v = entry.version;
    const config = v.config.drift!;
    const where = `model '${v.name}' drift`;
    const settings = driftSettings(config, where);
    const { profile, source } = await this.profileOf(v, config);
    const inputs = profile.columns.filter((c) => c.role === 'input');
    const input = pickInput(v, config, inputs.length);
    if (!entry.alive || this.closed) return;
    const pool = this.computePool();
    const metrics = this.metrics;
    const name = v.name;
    const version = v.version;
    // A window judged after its version was dropped must not bring its series back.
    const liveMetrics = {
      record: (...a: Parameters<DriftMetrics['record']>) => void (entry.alive && metrics?.record(...a)),
      recordActions: (...a: Parameters<DriftMetrics['recordActions']>) => void (entry.alive && metrics?.recordActions(...a)),
      windowDropped: (...a: Parameters<DriftMetrics['windowDropped']>) => void (entry.alive && metrics?.windowDropped(...a)),
    };
    entry.monitor = new DriftMonitor({
      model: name,
      version: Number(version),
      profile,
      pool,
      window: settings.window,
      options: settings.options,
      actions: settings.actions,
      minSeverity: settings.minSeverity,
      metrics: liveMetrics,
      onReport: (report, outcomes) => {
        const log = this.parts.logger;
        if (!log) return;
        const fields = { model: name, version, rows: report.currentRows, severity: report.decision.severity, datasetDrift: report.dataset.drifted, drifted: report.dataset.driftedColumns };
        if (report.decision.severity === 'none') log.debug(fields, 'drift window judged');
        else log.warn(fields, 'drift detected');
        for (const o of outcomes ?? []) if (!o.ok) log.warn({ model: name, version, action: o.action, target: o.target, attempts: o.attempts, error: o.error }, 'drift action failed');
      },
      onError: (error) => this.parts.logger?.warn({ model: name, version, err: error.message }, 'drift window could not be judged'),
    });
    entry.target = new VersionTarget(input.name, inputs.length, config.sample_rate, entry, metrics);
    entry.profileSource = source;
    entry.status = 'watching';
    delete entry.reason;
    this.parts.logger?.info({ model: name, version, profile: source, features: inputs.length }, 'drift monitoring on');
  }

  private async profileOf(v: ModelVersion, config: DriftConfig): Promise<{ profile: DriftProfile; source: string }> {
    const manager = this.parts.manager;
    const fromRegistry = manager.isServingRegistryVersion(v.name, Number(v.version));
    if (config.reference !== undefined) {
      const base = fromRegistry ? process.cwd() : join(manager.repository.root, v.name);
      const file = isAbsolute(config.reference) ? config.reference : join(base, config.reference);
      return { profile: await this.profileOfFile(file, config), source: file };
    }
    if (!fromRegistry) throw new ConfigError(`model '${v.name}': drift needs 'reference' (training data to compare with) for a model served from the repository`);
    const link = this.parts.registry;
    if (!link) throw new ConfigError(`model '${v.name}': no registry to read the drift profile from`);
    const stored = await (await link.get()).getProfile(v.name, Number(v.version));
    if (!stored?.drift) {
      throw new ConfigError(`model '${v.name}' version ${v.version} has no drift profile in the registry: run inferd models profile ${v.name}@${v.version} --data <training data>, or set drift.reference`);
    }
    return { profile: validateDriftProfile(stored.drift), source: `registry ${v.name}@${v.version}` };
  }

  /** Profiles a reference file, once per file content and column choice. */
  private async profileOfFile(file: string, config: DriftConfig): Promise<DriftProfile> {
    let s;
    try {
      s = await stat(file);
    } catch (error) {
      throw new ConfigError(`drift.reference: cannot read ${file}: ${(error as Error).message}`);
    }
    const key = JSON.stringify([file, s.size, s.mtimeMs, config.exclude, config.outputs]);
    let profile = this.profiles.get(key);
    if (!profile) {
      // read and profiled in the drift worker: a large training file must not hold up serving
      profile = this.computePool().profileFile(file, { exclude: config.exclude, outputs: config.outputs });
      this.profiles.set(key, profile);
      profile.catch(() => this.profiles.delete(key));
    }
    return profile;
  }

  /** The shared worker pool, started with the first version that needs it. */
  private computePool(): DriftComputePool {
    if (this.closed) throw new Error('drift monitoring is shut down');
    this.pool ??= new DriftComputePool();
    return this.pool;
  }

  private drop(entry: Entry): void {
    entry.alive = false;
    this.entries.delete(entry.version);
    const { name, version } = entry.version;
    // A reloaded version (same number, new instance) keeps the series its new monitor writes.
    const successor = [...this.entries.values()].some((e) => e.version.name === name && e.version.version === version);
    if (!successor) this.metrics?.forget(name, version);
    this.parts.logger?.debug({ model: name, version }, 'drift monitoring off (version unloaded)');
  }
}

/** The input the profile's features belong to, checked against its declared row width. */
function pickInput(v: ModelVersion, config: DriftConfig, features: number): { name: string } {
  let input = config.input !== undefined ? v.inputs.find((i) => i.name === config.input) : undefined;
  if (config.input !== undefined && !input) {
    throw new ConfigError(`drift.input '${config.input}' is not an input of model '${v.name}' (it has ${v.inputs.map((i) => `'${i.name}'`).join(', ')})`);
  }
  if (!input) {
    if (v.inputs.length !== 1) throw new ConfigError(`model '${v.name}' has ${v.inputs.length} inputs; name the one drift watches with drift.input`);
    input = v.inputs[0]!;
  }
  const dims = v.config.max_batch_size > 0 ? input.shape.slice(1) : input.shape;
  if (dims.every((d) => d > 0)) {
    const width = dims.reduce((a, b) => a * b, 1);
    if (width !== features) {
      throw new ConfigError(`drift: input '${input.name}' of model '${v.name}' has ${width} values per row but the drift profile has ${features} input features (exclude the columns that are not features)`);
    }
  }
  return { name: input.name };
}

/** The drift part of a server: the capture policy, the admin routes' state, and shutdown. */
export function createDriftServing(parts: DriftServingParts): DriftServing {
  return new DriftServing(parts);
}
