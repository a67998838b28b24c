/**
 * The model registry: versions with semantic labels, lineage and signatures; aliases and
 * stages; content-addressed artifacts; input profiles; an event log. Validation, artifact
 * copying and hashing happen here, persistence in a RegistryStore.
 */
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InferdError, InvalidInputError, ModelNotFoundError } from '../core/errors.js';
import { validateProfile, type InputProfile } from '../validation/ranges.js';
import type { ArtifactCipher } from '../security/artifacts/cipher.js';
import { ArtifactStore, sha256File, type ArtifactStorage } from './artifacts.js';
import {
  formatSelector,
  parseReference,
  parseSelector,
  validateAlias,
  validateModelName,
  validateStage,
  validateTags,
  validateVersionNumber,
  type Selector,
} from './names.js';
import { parseSemver } from './semver.js';
import { readOnnxSignature, validateSignature } from './signature.js';
import type {
  AliasMove,
  CompareAndSet,
  EventQuery,
  Lineage,
  ModelPatch,
  ModelVersion,
  RegisteredModel,
  RegistryEvent,
  RegistryStore,
  Stage,
  StageMove,
  VersionPatch,
} from './types.js';
import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The caller a registry change is made for, set by the admin API around each call
 * (`asActor(subject, fn)`), so events name the authenticated caller, not the server's user.
 */
const currentActor = new AsyncLocalStorage<string>();

export function asActor<T>(actor: string | undefined, fn: () => T): T {
  return actor === undefined ? fn() : currentActor.run(actor, fn);
}
import { projectVariable } from '../config/environment.js';

export interface RegistryOptions {
  /** Artifacts go to `<home>/artifacts` unless `artifacts` names another store. */
  home: string;
  artifacts?: ArtifactStorage;
  /** Who the events name; default $INFERD_USER, else the OS user. */
  actor?: string;
  /** Supplied by a server: a serving version cannot be deleted. */
  isServing?: (name: string, version: number) => boolean;
  /** Encrypts artifacts at rest (security.artifacts.encryption_key). */
  artifactCipher?: ArtifactCipher;
}

export interface RegisterOptions {
  /** MAJOR.MINOR.PATCH; proposed from the previous version's signature when absent. */
  semver?: string;
  description?: string;
  tags?: Record<string, string>;
  source?: string;
  runId?: string;
  metrics?: Record<string, number>;
  /** A file whose SHA-256 is recorded as the training data's fingerprint. */
  trainingData?: string;
}

export interface ResolvedArtifact {
  name: string;
  version: number;
  semver: string;
  /** The reference as asked, e.g. `fraud@champion`. */
  reference: string;
  /** Verified path of the read-only artifact. */
  path: string;
  sha256: string;
  signature: ModelVersion['signature'];
  profile: InputProfile | null;
}

export interface WatchOptions {
  /** Start after this event id; default: the newest event now (only new changes). */
  sinceEventId?: number;
  /** Polling period; default 1000 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

function defaultActor(): string {
  const fromEnv = projectVariable('INFERD_USER');
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  try {
    return os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

function validateMetrics(metrics: Record<string, number>): Record<string, number> {
  for (const [key, value] of Object.entries(metrics)) {
    if (key === '') throw new InvalidInputError('a metric needs a name');
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new InvalidInputError(`metric '${key}' must be a finite number`);
  }
  return { ...metrics };
}

export class Registry {
  readonly store: RegistryStore;
  readonly artifacts: ArtifactStorage;
  private readonly defaultActor: string;

  /** Who a change is recorded under: the caller the admin API is serving, else the configured actor. */
  get actor(): string {
    return currentActor.getStore() ?? this.defaultActor;
  }
  private readonly isServing: ((name: string, version: number) => boolean) | undefined;

  constructor(store: RegistryStore, options: RegistryOptions) {
    this.store = store;
    this.artifacts = options.artifacts ?? new ArtifactStore(path.join(options.home, 'artifacts'), options.artifactCipher !== undefined ? { cipher: options.artifactCipher } : {});
    this.defaultActor = options.actor ?? defaultActor();
    this.isServing = options.isServing;
  }

  async close(): Promise<void> {
    return this.store.close();
  }

  // ---- registration ----

  /**
   * Copies the ONNX file into the artifact store, reads its signature and records a new
   * version. Registering a file whose content an existing version of the same model already
   * has is refused with ALREADY_EXISTS naming that version: a retried registration cannot
   * silently create a twin, and the caller learns which version to use.
   */
  async register(name: string, file: string, options: RegisterOptions = {}): Promise<ModelVersion> {
    validateModelName(name);
    if (options.semver !== undefined) parseSemver(options.semver);
    const tags = validateTags(options.tags ?? {});
    const lineage: Lineage = {};
    if (options.source !== undefined) lineage.source = options.source;
    if (options.runId !== undefined) lineage.runId = options.runId;
    if (options.metrics !== undefined) lineage.metrics = validateMetrics(options.metrics);
    if (options.trainingData !== undefined) {
      const absolute = path.resolve(options.trainingData);
      let digest;
      try {
        digest = await sha256File(absolute);
      } catch (error) {
        throw new InvalidInputError(`cannot read training data ${absolute}: ${error instanceof Error ? error.message : String(error)}`);
      }
      lineage.trainingData = { path: absolute, ...digest };
    }

    const stored = await this.artifacts.ingest(path.resolve(file), readOnnxSignature);
    const version = await this.store.createVersion(
      {
        name,
        ...(options.semver !== undefined ? { semver: options.semver } : {}),
        description: options.description ?? '',
        tags,
        signature: stored.inspected,
        artifact: { sha256: stored.sha256, size: stored.size },
        lineage,
      },
      this.actor,
    );
    // A concurrent deletion of the last version using the same content may have removed the
    // file between ingest and commit; put it back.
    if (!(await this.artifacts.exists(stored.sha256))) await this.artifacts.ingest(path.resolve(file), async () => undefined);
    return version;
  }

  // ---- reading ----

  async listModels(): Promise<RegisteredModel[]> {
    return this.store.listModels();
  }

  async getModel(name: string): Promise<RegisteredModel> {
    const model = await this.store.getModel(validateModelName(name));
    if (model === undefined) throw new ModelNotFoundError(name);
    return model;
  }

  async listVersions(name: string): Promise<ModelVersion[]> {
    await this.getModel(name);
    return this.store.listVersions(name);
  }

  async getVersion(name: string, version: number): Promise<ModelVersion> {
    validateModelName(name);
    const found = await this.store.getVersion(name, validateVersionNumber(version));
    if (found === undefined) {
      await this.getModel(name);
      throw new ModelNotFoundError(name, String(version));
    }
    return found;
  }

  /** The version number a selector designates now. */
  private async versionFor(name: string, selector: Selector): Promise<number> {
    let version: number | null;
    switch (selector.kind) {
      case 'version':
        return selector.version;
      case 'latest':
        version = (await this.getModel(name)).latestVersion;
        if (version === null) throw new InferdError('NOT_FOUND', `model '${name}' has no versions`);
        return version;
      case 'stage':
        version = await this.store.versionInStage(name, selector.stage);
        break;
      case 'alias':
        version = await this.store.aliasTarget(name, selector.alias);
        break;
    }
    if (version === null) {
      await this.getModel(name);
      const what = selector.kind === 'stage' ? `no version in stage ${selector.stage}` : `no alias '${formatSelector(selector)}'`;
      throw new InferdError('NOT_FOUND', `model '${name}' has ${what}`);
    }
    return version;
  }

  /**
   * Resolves `name`, `name@latest`, `name@3`, `name@Production` or `name@champion`; or, with two
   * arguments, a name and the part after '@'.
   */
  async resolve(reference: string, selector?: string): Promise<ModelVersion> {
    const ref = selector === undefined ? parseReference(reference) : { name: validateModelName(reference), selector: parseSelector(selector) };
    return this.getVersion(ref.name, await this.versionFor(ref.name, ref.selector));
  }

  /**
   * Resolves a reference to its artifact and verifies the file's SHA-256: a damaged or missing
   * artifact is refused (FAILED_PRECONDITION) rather than served.
   */
  async resolveArtifact(reference: string, selector?: string): Promise<ResolvedArtifact> {
    const version = await this.resolve(reference, selector);
    const file = await this.artifacts.verify(version.artifact.sha256, `model '${version.name}' version ${version.version}`);
    const profile = version.hasProfile ? await this.store.getProfile(version.name, version.version) : null;
    return {
      name: version.name,
      version: version.version,
      semver: version.semver,
      reference: selector === undefined ? reference : `${reference}@${selector}`,
      path: file,
      sha256: version.artifact.sha256,
      signature: version.signature,
      profile,
    };
  }

  // ---- editing ----

  async updateModel(name: string, patch: ModelPatch): Promise<RegisteredModel> {
    validateModelName(name);
    const clean: ModelPatch = {};
    if (patch.description !== undefined) clean.description = patch.description;
    if (patch.tags !== undefined) clean.tags = validateTags(patch.tags);
    return this.store.updateModel(name, clean, this.actor);
  }

  /** Edits description, tags, the semver label or the signature (e.g. to pin a dimension). */
  async updateVersion(name: string, version: number, patch: VersionPatch): Promise<ModelVersion> {
    validateModelName(name);
    validateVersionNumber(version);
    const clean: VersionPatch = {};
    if (patch.description !== undefined) clean.description = patch.description;
    if (patch.tags !== undefined) clean.tags = validateTags(patch.tags);
    if (patch.semver !== undefined) {
      parseSemver(patch.semver);
      clean.semver = patch.semver;
    }
    if (patch.signature !== undefined) clean.signature = validateSignature(patch.signature);
    return this.store.updateVersion(name, version, clean, this.actor);
  }

  // ---- aliases and stages ----

  /**
   * Points `alias` at `version`. With `expected` it is a compare-and-set: "move champion from 2
   * to 3" fails with RegistryConflictError (naming where the alias is now) if it moved meanwhile.
   */
  async setAlias(name: string, alias: string, version: number, cas: CompareAndSet = {}): Promise<AliasMove> {
    validateModelName(name);
    validateAlias(alias);
    validateVersionNumber(version);
    return this.store.setAlias(name, alias, version, cas, this.actor);
  }

  async deleteAlias(name: string, alias: string, cas: CompareAndSet = {}): Promise<AliasMove> {
    validateModelName(name);
    validateAlias(alias);
    return this.store.deleteAlias(name, alias, cas, this.actor);
  }

  /**
   * Moves a version to a stage. With archiveExistingVersions (Staging and Production only) the
   * other versions in that stage go to Archived in the same transaction. `expected` compares
   * against the version `name@<stage>` resolves to now.
   */
  async transitionStage(
    name: string,
    version: number,
    stage: Stage | string,
    options: CompareAndSet & { archiveExistingVersions?: boolean } = {},
  ): Promise<StageMove> {
    validateModelName(name);
    validateVersionNumber(version);
    const target = validateStage(stage);
    if (options.archiveExistingVersions === true && target !== 'Staging' && target !== 'Production') {
      throw new InvalidInputError('archiving existing versions applies to the Staging and Production stages only');
    }
    return this.store.transitionStage(name, version, target, options, this.actor);
  }

  async archive(name: string, version: number): Promise<StageMove> {
    return this.transitionStage(name, version, 'Archived');
  }

  // ---- deletion ----

  private refuseServing(name: string, versions: number[]): void {
    if (this.isServing === undefined) return;
    const serving = versions.filter((v) => this.isServing!(name, v));
    if (serving.length > 0) {
      throw new InferdError(
        'FAILED_PRECONDITION',
        `model '${name}' version${serving.length > 1 ? 's' : ''} ${serving.join(', ')} ${serving.length > 1 ? 'are' : 'is'} serving; unload before deleting`,
      );
    }
  }

  private async dropUnreferenced(sha256s: string[]): Promise<void> {
    for (const sha256 of new Set(sha256s)) {
      if ((await this.store.artifactReferences(sha256)) === 0) await this.artifacts.remove(sha256);
    }
  }

  /**
   * Deletes a version. Refused for a serving version (always) and for one that holds an alias
   * or the Production stage (unless force). Its artifact goes when no other version uses it.
   */
  async deleteVersion(name: string, version: number, options: { force?: boolean } = {}): Promise<void> {
    validateModelName(name);
    validateVersionNumber(version);
    this.refuseServing(name, [version]);
    const deleted = await this.store.deleteVersion(name, version, options, this.actor);
    await this.dropUnreferenced([deleted.sha256]);
  }

  async deleteModel(name: string, options: { force?: boolean } = {}): Promise<void> {
    const versions = await this.listVersions(name);
    this.refuseServing(
      name,
      versions.map((v) => v.version),
    );
    const deleted = await this.store.deleteModel(name, options, this.actor);
    await this.dropUnreferenced(deleted.map((d) => d.sha256));
  }

  // ---- input profiles ----

  /**
   * Stores the value ranges of a version's inputs. When the model has one input with a known
   * row width, the profile must have that many features.
   */
  async setProfile(name: string, version: number, profile: InputProfile): Promise<void> {
    const checked = validateProfile(profile);
    const target = await this.getVersion(name, version);
    const inputs = target.signature.inputs;
    if (inputs.length === 1) {
      const dims = inputs[0]!.shape.slice(1);
      if (dims.length > 0 && dims.every((d) => d >= 0)) {
        const width = dims.reduce((a, b) => a * b, 1);
        if (width !== checked.features.length) {
          throw new InvalidInputError(
            `the profile has ${checked.features.length} features but input '${inputs[0]!.name}' of model '${name}' version ${version} has ${width} values per row` +
              (checked.features.length === width + 1 ? '; exclude the label column' : ''),
          );
        }
      }
    }
    await this.store.setProfile(name, version, checked, this.actor);
  }

  async getProfile(name: string, version: number): Promise<InputProfile | null> {
    await this.getVersion(name, version);
    return this.store.getProfile(name, version);
  }

  // ---- events ----

  async events(query: EventQuery = {}): Promise<RegistryEvent[]> {
    if (query.model !== undefined) validateModelName(query.model);
    return this.store.events(query);
  }

  /** Events after `sinceEventId` (all models), oldest first. */
  async changes(sinceEventId: number, limit?: number): Promise<RegistryEvent[]> {
    return this.store.events({ sinceEventId, ...(limit !== undefined ? { limit } : {}) });
  }

  async lastEventId(): Promise<number> {
    return this.store.lastEventId();
  }

  /**
   * Polls the event log and yields each new event; ends when `signal` aborts. A store that
   * cannot be reached is retried on the next tick, so a brief outage does not end the watch.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<RegistryEvent, void, undefined> {
    const interval = options.intervalMs ?? 1000;
    const signal = options.signal;
    let since = options.sinceEventId;
    // A function, so the compiler does not assume the flag keeps the value it had at the loop test.
    const aborted = (): boolean => signal?.aborted === true;
    while (!aborted()) {
      try {
        if (since === undefined) since = await this.store.lastEventId();
        const batch = await this.store.events({ sinceEventId: since });
        for (const event of batch) {
          since = event.id;
          yield event;
          if (aborted()) return;
        }
        if (batch.length > 0) continue;
      } catch (error) {
        if (!(error instanceof InferdError && error.code === 'UNAVAILABLE')) throw error;
      }
      try {
        await sleep(interval, undefined, signal === undefined ? undefined : { signal });
      } catch {
        return;
      }
    }
  }
}
