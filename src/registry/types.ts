/**
 * The model registry's records and the one interface both of its stores (SQLite, PostgreSQL)
 * implement. The Registry class (registry.ts) adds artifacts, hashing and validation on top.
 */
import type { TensorMetadata } from '../core/types.js';
import type { InputProfile } from '../validation/ranges.js';

/** Classic MLflow stages. Their names are reserved: no alias may take them. */
export const STAGES = ['None', 'Staging', 'Production', 'Archived'] as const;
export type Stage = (typeof STAGES)[number];

export interface Signature {
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface TrainingData {
  /** Absolute path of the file when it was hashed. */
  path: string;
  sha256: string;
  size: number;
}

export interface Lineage {
  /** Where the model came from: a repository URL, a notebook, a pipeline name. */
  source?: string;
  runId?: string;
  metrics?: Record<string, number>;
  trainingData?: TrainingData;
}

export interface RegisteredModel {
  name: string;
  description: string;
  tags: Record<string, string>;
  /** Highest version number; null when every version was deleted. */
  latestVersion: number | null;
  versionCount: number;
  /** alias → version number. */
  aliases: Record<string, number>;
  /** Highest version in the Production stage, what `name@Production` resolves to. */
  productionVersion: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface ModelVersion {
  name: string;
  /** 1, 2, 3... per model, never reused after a deletion. */
  version: number;
  /** MAJOR.MINOR.PATCH label, unique per model. */
  semver: string;
  description: string;
  tags: Record<string, string>;
  stage: Stage;
  aliases: string[];
  signature: Signature;
  artifact: { sha256: string; size: number };
  lineage: Lineage;
  hasProfile: boolean;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
}

export type EventAction =
  | 'model.created'
  | 'model.updated'
  | 'model.deleted'
  | 'version.registered'
  | 'version.updated'
  | 'version.deleted'
  | 'alias.set'
  | 'alias.deleted'
  | 'stage.transitioned'
  | 'profile.set';

export interface RegistryEvent {
  /** Increasing; a poller asks for events after the last id it saw. */
  id: number;
  at: string;
  actor: string;
  action: EventAction;
  model: string;
  version: number | null;
  details: Record<string, unknown>;
}

/** What a store needs to create a version; the version number and semver default are its job. */
export interface NewVersion {
  name: string;
  /** When absent the store proposes one inside the transaction (see proposeSemver). */
  semver?: string;
  description: string;
  tags: Record<string, string>;
  signature: Signature;
  artifact: { sha256: string; size: number };
  lineage: Lineage;
}

export interface VersionPatch {
  description?: string;
  /** Replaces the whole tag map. */
  tags?: Record<string, string>;
  semver?: string;
  signature?: Signature;
}

export interface ModelPatch {
  description?: string;
  tags?: Record<string, string>;
}

/**
 * Compare-and-set: `expected` is the version the alias (or the stage) must point to now,
 * null meaning "nothing yet". Absent: move unconditionally.
 */
export interface CompareAndSet {
  expected?: number | null;
}

export interface AliasMove {
  name: string;
  alias: string;
  /** null after a deletion. */
  version: number | null;
  previous: number | null;
}

export interface StageMove {
  name: string;
  version: number;
  stage: Stage;
  previousStage: Stage;
  /** Other versions moved to Archived by archiveExistingVersions. */
  archived: number[];
}

export interface DeletedVersion {
  name: string;
  version: number;
  sha256: string;
}

export interface EventQuery {
  model?: string;
  /** Only events with a greater id. */
  sinceEventId?: number;
  /** Default 1000. */
  limit?: number;
}

/**
 * Persistence of the registry. Every mutation runs in one transaction together with its event
 * row, so the event log never disagrees with the data. Methods throw InferdError:
 * NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION (guards, compare-and-set conflicts) and
 * UNAVAILABLE (store locked or unreachable).
 */
export interface RegistryStore {
  /** `sqlite:/path/to/registry.db` or `postgres://host:port/db` (without credentials). */
  readonly label: string;
  readonly kind: 'sqlite' | 'postgres';

  createVersion(input: NewVersion, actor: string): Promise<ModelVersion>;
  getModel(name: string): Promise<RegisteredModel | undefined>;
  listModels(): Promise<RegisteredModel[]>;
  updateModel(name: string, patch: ModelPatch, actor: string): Promise<RegisteredModel>;
  getVersion(name: string, version: number): Promise<ModelVersion | undefined>;
  /** Ascending version order. */
  listVersions(name: string): Promise<ModelVersion[]>;
  updateVersion(name: string, version: number, patch: VersionPatch, actor: string): Promise<ModelVersion>;

  /** Highest version number in `stage`, or null. */
  versionInStage(name: string, stage: Stage): Promise<number | null>;
  /** Version an alias points to, or null. */
  aliasTarget(name: string, alias: string): Promise<number | null>;
  setAlias(name: string, alias: string, version: number, cas: CompareAndSet, actor: string): Promise<AliasMove>;
  deleteAlias(name: string, alias: string, cas: CompareAndSet, actor: string): Promise<AliasMove>;
  transitionStage(
    name: string,
    version: number,
    stage: Stage,
    options: CompareAndSet & { archiveExistingVersions?: boolean },
    actor: string,
  ): Promise<StageMove>;

  /**
   * Refuses (FAILED_PRECONDITION) a version that holds an alias or the Production stage unless
   * `force`; with force its aliases go too.
   */
  deleteVersion(name: string, version: number, options: { force?: boolean }, actor: string): Promise<DeletedVersion>;
  /** Deletes the model and all its versions, with the same guard over every version. */
  deleteModel(name: string, options: { force?: boolean }, actor: string): Promise<DeletedVersion[]>;
  /** How many versions (of any model) use this artifact. */
  artifactReferences(sha256: string): Promise<number>;

  setProfile(name: string, version: number, profile: InputProfile, actor: string): Promise<void>;
  getProfile(name: string, version: number): Promise<InputProfile | null>;

  events(query: EventQuery): Promise<RegistryEvent[]>;
  /** Id of the newest event, 0 when there is none. */
  lastEventId(): Promise<number>;
  /** Schema version of the database (migrations applied on open). */
  schemaVersion(): Promise<number>;

  close(): Promise<void>;
}
