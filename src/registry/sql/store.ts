/**
 * The registry's persistence logic, written once over a SqlDriver. Every mutation is one
 * transaction that first locks the model's row (PostgreSQL: SELECT ... FOR UPDATE; SQLite:
 * BEGIN IMMEDIATE already holds the file's write lock), then checks, writes and appends its
 * events. Checks made under that lock cannot be invalidated by a concurrent writer, which is
 * what makes compare-and-set on aliases and stages exact.
 */
import { InferdError, ModelNotFoundError } from '../../core/errors.js';
import type { InputProfile } from '../../validation/ranges.js';
import { RegistryConflictError } from '../errors.js';
import { compareSemver, proposeSemver } from '../semver.js';
import type {
  AliasMove,
  CompareAndSet,
  DeletedVersion,
  EventAction,
  EventQuery,
  Lineage,
  ModelPatch,
  ModelVersion,
  NewVersion,
  RegisteredModel,
  RegistryEvent,
  RegistryStore,
  Signature,
  Stage,
  StageMove,
  VersionPatch,
} from '../types.js';
import type { Param, Queryable, Row, SqlDriver } from './driver.js';
import { MIGRATIONS, SCHEMA_VERSION } from './schema.js';

// Advisory lock keys (PostgreSQL): one serialises migrations, one makes event ids commit in order.
const MIGRATION_LOCK = 7_301_001;
const EVENT_LOCK = 7_301_002;

const VERSION_COLUMNS =
  'model, version, semver, description, tags, lineage, signature, sha256, artifact_size, stage, created_at, created_by, updated_at, (profile IS NOT NULL) AS has_profile';

interface PendingEvent {
  action: EventAction;
  model: string;
  version: number | null;
  details: Record<string, unknown>;
}

// ---- row decoding: SQLite gives text and 0/1, PostgreSQL gives parsed JSONB, Dates and int8 strings ----

function str(row: Row, key: string): string {
  const value = row[key];
  if (typeof value !== 'string') throw new InferdError('INTERNAL', `registry column ${key} is not text`);
  return value;
}

function int(row: Row, key: string): number {
  const value = row[key];
  if (typeof value === 'number') return value;
  if (typeof value === 'string' || typeof value === 'bigint') return Number(value);
  throw new InferdError('INTERNAL', `registry column ${key} is not a number`);
}

function intOrNull(row: Row | undefined, key: string): number | null {
  if (row === undefined || row[key] === null || row[key] === undefined) return null;
  return int(row, key);
}

function json<T>(row: Row, key: string): T {
  const value = row[key];
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

function time(row: Row, key: string): string {
  const value = row[key];
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function versionFromRow(row: Row, aliases: string[]): ModelVersion {
  return {
    name: str(row, 'model'),
    version: int(row, 'version'),
    semver: str(row, 'semver'),
    description: str(row, 'description'),
    tags: json<Record<string, string>>(row, 'tags'),
    stage: str(row, 'stage') as Stage,
    aliases,
    signature: json<Signature>(row, 'signature'),
    artifact: { sha256: str(row, 'sha256'), size: int(row, 'artifact_size') },
    lineage: json<Lineage>(row, 'lineage'),
    hasProfile: Boolean(row['has_profile']),
    createdAt: time(row, 'created_at'),
    createdBy: str(row, 'created_by'),
    updatedAt: time(row, 'updated_at'),
  };
}

function eventFromRow(row: Row): RegistryEvent {
  return {
    id: int(row, 'id'),
    at: time(row, 'at'),
    actor: str(row, 'actor'),
    action: str(row, 'action') as EventAction,
    model: str(row, 'model'),
    version: intOrNull(row, 'version'),
    details: json<Record<string, unknown>>(row, 'details'),
  };
}

function versionLabel(name: string, version: number): string {
  return `model '${name}' version ${version}`;
}

export class SqlRegistryStore implements RegistryStore {
  private constructor(private readonly db: SqlDriver) {}

  get label(): string {
    return this.db.label;
  }

  get kind(): 'sqlite' | 'postgres' {
    return this.db.kind;
  }

  /** The database connection, for stores of other concerns kept in the same database (traffic). */
  get driver(): SqlDriver {
    return this.db;
  }

  /** Wraps an open driver, creating or upgrading the schema. */
  static async open(db: SqlDriver): Promise<SqlRegistryStore> {
    const store = new SqlRegistryStore(db);
    try {
      await store.migrate();
    } catch (error) {
      await db.close().catch(() => undefined);
      throw error;
    }
    return store;
  }

  private async migrate(): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (this.db.kind === 'postgres') await tx.all('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await tx.run('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
      const rows = await tx.all('SELECT MAX(version) AS version FROM schema_version');
      const current = intOrNull(rows[0], 'version') ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new InferdError(
          'FAILED_PRECONDITION',
          `registry store ${this.label} has schema version ${current}, newer than this inferd knows (${SCHEMA_VERSION}); upgrade inferd`,
        );
      }
      for (const migration of MIGRATIONS) {
        if (migration.version <= current) continue;
        for (const statement of migration[this.db.kind]) await tx.run(statement);
      }
      if (current < SCHEMA_VERSION) {
        await tx.run('DELETE FROM schema_version');
        await tx.run('INSERT INTO schema_version (version) VALUES ($1)', [SCHEMA_VERSION]);
      }
    });
  }

  async schemaVersion(): Promise<number> {
    const rows = await this.db.all('SELECT MAX(version) AS version FROM schema_version');
    return intOrNull(rows[0], 'version') ?? 0;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- helpers inside a transaction ----

  private async lockModel(tx: Queryable, name: string): Promise<Row> {
    const rows = await tx.all(`SELECT name, next_version FROM models WHERE name = $1${this.db.forUpdate}`, [name]);
    const row = rows[0];
    if (row === undefined) throw new ModelNotFoundError(name);
    return row;
  }

  private async versionRow(q: Queryable, name: string, version: number): Promise<Row | undefined> {
    return (await q.all(`SELECT ${VERSION_COLUMNS} FROM versions WHERE model = $1 AND version = $2`, [name, version]))[0];
  }

  private async requireVersion(q: Queryable, name: string, version: number): Promise<Row> {
    const row = await this.versionRow(q, name, version);
    if (row === undefined) throw new ModelNotFoundError(name, String(version));
    return row;
  }

  private async aliasesOf(q: Queryable, name: string, version: number): Promise<string[]> {
    const rows = await q.all('SELECT alias FROM aliases WHERE model = $1 AND version = $2 ORDER BY alias', [name, version]);
    return rows.map((r) => str(r, 'alias'));
  }

  private async readVersion(q: Queryable, name: string, version: number): Promise<ModelVersion | undefined> {
    const row = await this.versionRow(q, name, version);
    return row === undefined ? undefined : versionFromRow(row, await this.aliasesOf(q, name, version));
  }

  private async appendEvents(tx: Queryable, actor: string, events: PendingEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Held to commit, so event ids become visible in increasing order and a poller that asks
    // for "after id N" never skips one committed late.
    if (this.db.kind === 'postgres') await tx.all('SELECT pg_advisory_xact_lock($1)', [EVENT_LOCK]);
    const at = new Date().toISOString();
    for (const event of events) {
      await tx.run('INSERT INTO events (at, actor, action, model, version, details) VALUES ($1, $2, $3, $4, $5, $6)', [
        at,
        actor,
        event.action,
        event.model,
        event.version,
        JSON.stringify(event.details),
      ]);
    }
  }

  private async touchModel(tx: Queryable, name: string, at: string): Promise<void> {
    await tx.run('UPDATE models SET updated_at = $1 WHERE name = $2', [at, name]);
  }

  private async guardDeletion(q: Queryable, name: string, version: number, stage: Stage, force: boolean): Promise<string[]> {
    const aliases = await this.aliasesOf(q, name, version);
    if (!force && (aliases.length > 0 || stage === 'Production')) {
      const held = [
        ...(aliases.length > 0 ? [`alias${aliases.length > 1 ? 'es' : ''} ${aliases.map((a) => `'${a}'`).join(', ')}`] : []),
        ...(stage === 'Production' ? ['the Production stage'] : []),
      ].join(' and ');
      throw new InferdError(
        'FAILED_PRECONDITION',
        `${versionLabel(name, version)} holds ${held}; move ${held.includes(' and ') ? 'them' : 'it'} to another version first, or delete with force`,
      );
    }
    return aliases;
  }

  // ---- models ----

  private async loadModels(name?: string): Promise<RegisteredModel[]> {
    const where = name === undefined ? '' : ' WHERE name = $1';
    const whereModel = name === undefined ? '' : ' WHERE model = $1';
    const andModel = name === undefined ? '' : ' AND model = $1';
    const params: Param[] = name === undefined ? [] : [name];
    const models = await this.db.all(`SELECT name, description, tags, created_at, updated_at FROM models${where} ORDER BY name`, params);
    if (models.length === 0) return [];
    const counts = await this.db.all(`SELECT model, MAX(version) AS latest, COUNT(*) AS n FROM versions${whereModel} GROUP BY model`, params);
    const production = await this.db.all(
      `SELECT model, MAX(version) AS version FROM versions WHERE stage = 'Production'${andModel} GROUP BY model`,
      params,
    );
    const aliases = await this.db.all(`SELECT model, alias, version FROM aliases${whereModel} ORDER BY alias`, params);
    const countOf = new Map(counts.map((r) => [str(r, 'model'), r]));
    const productionOf = new Map(production.map((r) => [str(r, 'model'), int(r, 'version')]));
    return models.map((row) => {
      const model = str(row, 'name');
      const count = countOf.get(model);
      const own: Record<string, number> = {};
      for (const a of aliases) if (str(a, 'model') === model) own[str(a, 'alias')] = int(a, 'version');
      return {
        name: model,
        description: str(row, 'description'),
        tags: json<Record<string, string>>(row, 'tags'),
        latestVersion: intOrNull(count, 'latest'),
        versionCount: count === undefined ? 0 : int(count, 'n'),
        aliases: own,
        productionVersion: productionOf.get(model) ?? null,
        createdAt: time(row, 'created_at'),
        updatedAt: time(row, 'updated_at'),
      };
    });
  }

  async getModel(name: string): Promise<RegisteredModel | undefined> {
    return (await this.loadModels(name))[0];
  }

  listModels(): Promise<RegisteredModel[]> {
    return this.loadModels();
  }

  async updateModel(name: string, patch: ModelPatch, actor: string): Promise<RegisteredModel> {
    await this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const at = new Date().toISOString();
      const fields: string[] = [];
      if (patch.description !== undefined) {
        await tx.run('UPDATE models SET description = $1 WHERE name = $2', [patch.description, name]);
        fields.push('description');
      }
      if (patch.tags !== undefined) {
        await tx.run('UPDATE models SET tags = $1 WHERE name = $2', [JSON.stringify(patch.tags), name]);
        fields.push('tags');
      }
      if (fields.length === 0) return;
      await this.touchModel(tx, name, at);
      await this.appendEvents(tx, actor, [{ action: 'model.updated', model: name, version: null, details: { fields } }]);
    });
    const model = await this.getModel(name);
    if (model === undefined) throw new ModelNotFoundError(name);
    return model;
  }

  // ---- versions ----

  async createVersion(input: NewVersion, actor: string): Promise<ModelVersion> {
    return this.db.transaction(async (tx) => {
      const at = new Date().toISOString();
      const created = await tx.run(
        "INSERT INTO models (name, description, tags, next_version, created_at, updated_at) VALUES ($1, '', '{}', 1, $2, $2) ON CONFLICT (name) DO NOTHING",
        [input.name, at],
      );
      const model = await this.lockModel(tx, input.name);
      const version = int(model, 'next_version');

      const same = await tx.all('SELECT version FROM versions WHERE model = $1 AND sha256 = $2', [input.name, input.artifact.sha256]);
      if (same[0] !== undefined) {
        throw new InferdError(
          'ALREADY_EXISTS',
          `${versionLabel(input.name, int(same[0], 'version'))} already has this artifact (sha256 ${input.artifact.sha256}); register a different file or reuse that version`,
        );
      }
      const previousRow = (
        await tx.all('SELECT signature FROM versions WHERE model = $1 ORDER BY version DESC LIMIT 1', [input.name])
      )[0];
      const labels = (await tx.all('SELECT semver FROM versions WHERE model = $1', [input.name])).map((r) => str(r, 'semver'));
      const highest = labels.reduce<string | undefined>((a, b) => (a === undefined || compareSemver(b, a) > 0 ? b : a), undefined);
      const previous = previousRow === undefined ? undefined : { signature: json<Signature>(previousRow, 'signature') };
      const semver = input.semver ?? proposeSemver(previous, highest, input.signature);
      if (labels.includes(semver)) {
        throw new InferdError('ALREADY_EXISTS', `model '${input.name}' already has a version labelled ${semver}`);
      }

      await tx.run(
        `INSERT INTO versions (model, version, semver, description, tags, lineage, signature, sha256, artifact_size, stage, created_at, created_by, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'None', $10, $11, $10)`,
        [
          input.name,
          version,
          semver,
          input.description,
          JSON.stringify(input.tags),
          JSON.stringify(input.lineage),
          JSON.stringify(input.signature),
          input.artifact.sha256,
          input.artifact.size,
          at,
          actor,
        ],
      );
      await tx.run('UPDATE models SET next_version = $1, updated_at = $2 WHERE name = $3', [version + 1, at, input.name]);
      const events: PendingEvent[] = [];
      if (created > 0) events.push({ action: 'model.created', model: input.name, version: null, details: {} });
      events.push({
        action: 'version.registered',
        model: input.name,
        version,
        details: {
          semver,
          sha256: input.artifact.sha256,
          size: input.artifact.size,
          ...(input.semver === undefined ? { semverProposed: true } : {}),
          ...(input.lineage.source !== undefined ? { source: input.lineage.source } : {}),
          ...(input.lineage.runId !== undefined ? { runId: input.lineage.runId } : {}),
        },
      });
      await this.appendEvents(tx, actor, events);
      const row = await this.requireVersion(tx, input.name, version);
      return versionFromRow(row, []);
    });
  }

  getVersion(name: string, version: number): Promise<ModelVersion | undefined> {
    return this.readVersion(this.db, name, version);
  }

  async listVersions(name: string): Promise<ModelVersion[]> {
    const rows = await this.db.all(`SELECT ${VERSION_COLUMNS} FROM versions WHERE model = $1 ORDER BY version`, [name]);
    const aliases = await this.db.all('SELECT alias, version FROM aliases WHERE model = $1 ORDER BY alias', [name]);
    return rows.map((row) => {
      const version = int(row, 'version');
      return versionFromRow(
        row,
        aliases.filter((a) => int(a, 'version') === version).map((a) => str(a, 'alias')),
      );
    });
  }

  async updateVersion(name: string, version: number, patch: VersionPatch, actor: string): Promise<ModelVersion> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const row = await this.requireVersion(tx, name, version);
      const at = new Date().toISOString();
      const details: Record<string, unknown> = {};
      const fields: string[] = [];
      if (patch.semver !== undefined && patch.semver !== str(row, 'semver')) {
        const taken = await tx.all('SELECT version FROM versions WHERE model = $1 AND semver = $2', [name, patch.semver]);
        if (taken[0] !== undefined) {
          throw new InferdError('ALREADY_EXISTS', `${versionLabel(name, int(taken[0], 'version'))} is already labelled ${patch.semver}`);
        }
        await tx.run('UPDATE versions SET semver = $1 WHERE model = $2 AND version = $3', [patch.semver, name, version]);
        details['semver'] = { from: str(row, 'semver'), to: patch.semver };
        fields.push('semver');
      }
      if (patch.description !== undefined) {
        await tx.run('UPDATE versions SET description = $1 WHERE model = $2 AND version = $3', [patch.description, name, version]);
        fields.push('description');
      }
      if (patch.tags !== undefined) {
        await tx.run('UPDATE versions SET tags = $1 WHERE model = $2 AND version = $3', [JSON.stringify(patch.tags), name, version]);
        fields.push('tags');
      }
      if (patch.signature !== undefined) {
        await tx.run('UPDATE versions SET signature = $1 WHERE model = $2 AND version = $3', [JSON.stringify(patch.signature), name, version]);
        details['signature'] = { from: json<Signature>(row, 'signature'), to: patch.signature };
        fields.push('signature');
      }
      if (fields.length > 0) {
        await tx.run('UPDATE versions SET updated_at = $1 WHERE model = $2 AND version = $3', [at, name, version]);
        await this.touchModel(tx, name, at);
        await this.appendEvents(tx, actor, [{ action: 'version.updated', model: name, version, details: { fields, ...details } }]);
      }
      const updated = await this.readVersion(tx, name, version);
      if (updated === undefined) throw new ModelNotFoundError(name, String(version));
      return updated;
    });
  }

  // ---- aliases and stages ----

  async versionInStage(name: string, stage: Stage): Promise<number | null> {
    const rows = await this.db.all('SELECT MAX(version) AS version FROM versions WHERE model = $1 AND stage = $2', [name, stage]);
    return intOrNull(rows[0], 'version');
  }

  async aliasTarget(name: string, alias: string): Promise<number | null> {
    const rows = await this.db.all('SELECT version FROM aliases WHERE model = $1 AND alias = $2', [name, alias]);
    return intOrNull(rows[0], 'version');
  }

  private static checkExpected(cas: CompareAndSet, current: number | null, what: string): void {
    if (cas.expected === undefined || cas.expected === current) return;
    const now = current === null ? 'is not set' : `points to version ${current}`;
    const wanted = cas.expected === null ? 'not to be set' : `version ${cas.expected}`;
    throw new RegistryConflictError(`${what} ${now}, the caller expected ${wanted}; nothing was changed`, current);
  }

  async setAlias(name: string, alias: string, version: number, cas: CompareAndSet, actor: string): Promise<AliasMove> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const current = intOrNull((await tx.all('SELECT version FROM aliases WHERE model = $1 AND alias = $2', [name, alias]))[0], 'version');
      SqlRegistryStore.checkExpected(cas, current, `alias '${alias}' of model '${name}'`);
      await this.requireVersion(tx, name, version);
      if (current !== version) {
        const at = new Date().toISOString();
        await tx.run(
          `INSERT INTO aliases (model, alias, version, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
          [name, alias, version, at, actor],
        );
        await this.touchModel(tx, name, at);
        await this.appendEvents(tx, actor, [{ action: 'alias.set', model: name, version, details: { alias, from: current, to: version } }]);
      }
      return { name, alias, version, previous: current };
    });
  }

  async deleteAlias(name: string, alias: string, cas: CompareAndSet, actor: string): Promise<AliasMove> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const current = intOrNull((await tx.all('SELECT version FROM aliases WHERE model = $1 AND alias = $2', [name, alias]))[0], 'version');
      SqlRegistryStore.checkExpected(cas, current, `alias '${alias}' of model '${name}'`);
      if (current === null) throw new InferdError('NOT_FOUND', `model '${name}' has no alias '${alias}'`);
      await tx.run('DELETE FROM aliases WHERE model = $1 AND alias = $2', [name, alias]);
      await this.touchModel(tx, name, new Date().toISOString());
      await this.appendEvents(tx, actor, [{ action: 'alias.deleted', model: name, version: current, details: { alias, from: current, to: null } }]);
      return { name, alias, version: null, previous: current };
    });
  }

  async transitionStage(
    name: string,
    version: number,
    stage: Stage,
    options: CompareAndSet & { archiveExistingVersions?: boolean },
    actor: string,
  ): Promise<StageMove> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const current = intOrNull(
        (await tx.all('SELECT MAX(version) AS version FROM versions WHERE model = $1 AND stage = $2', [name, stage]))[0],
        'version',
      );
      SqlRegistryStore.checkExpected(options, current, `stage ${stage} of model '${name}'`);
      const row = await this.requireVersion(tx, name, version);
      const from = str(row, 'stage') as Stage;
      const at = new Date().toISOString();
      let archived: number[] = [];
      if (options.archiveExistingVersions === true) {
        const others = await tx.all('SELECT version FROM versions WHERE model = $1 AND stage = $2 AND version <> $3 ORDER BY version', [
          name,
          stage,
          version,
        ]);
        archived = others.map((r) => int(r, 'version'));
        await tx.run("UPDATE versions SET stage = 'Archived', updated_at = $1 WHERE model = $2 AND stage = $3 AND version <> $4", [
          at,
          name,
          stage,
          version,
        ]);
      }
      if (from !== stage) {
        await tx.run('UPDATE versions SET stage = $1, updated_at = $2 WHERE model = $3 AND version = $4', [stage, at, name, version]);
      }
      if (from !== stage || archived.length > 0) {
        await this.touchModel(tx, name, at);
        await this.appendEvents(tx, actor, [{ action: 'stage.transitioned', model: name, version, details: { from, to: stage, archived } }]);
      }
      return { name, version, stage, previousStage: from, archived };
    });
  }

  // ---- deletion ----

  async deleteVersion(name: string, version: number, options: { force?: boolean }, actor: string): Promise<DeletedVersion> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const row = await this.requireVersion(tx, name, version);
      const stage = str(row, 'stage') as Stage;
      const aliases = await this.guardDeletion(tx, name, version, stage, options.force === true);
      const sha256 = str(row, 'sha256');
      await tx.run('DELETE FROM aliases WHERE model = $1 AND version = $2', [name, version]);
      await tx.run('DELETE FROM versions WHERE model = $1 AND version = $2', [name, version]);
      await this.touchModel(tx, name, new Date().toISOString());
      await this.appendEvents(tx, actor, [
        { action: 'version.deleted', model: name, version, details: { semver: str(row, 'semver'), stage, aliases, sha256, force: options.force === true } },
      ]);
      return { name, version, sha256 };
    });
  }

  async deleteModel(name: string, options: { force?: boolean }, actor: string): Promise<DeletedVersion[]> {
    return this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      const rows = await tx.all('SELECT version, stage, sha256 FROM versions WHERE model = $1 ORDER BY version', [name]);
      for (const row of rows) await this.guardDeletion(tx, name, int(row, 'version'), str(row, 'stage') as Stage, options.force === true);
      await tx.run('DELETE FROM aliases WHERE model = $1', [name]);
      await tx.run('DELETE FROM versions WHERE model = $1', [name]);
      await tx.run('DELETE FROM models WHERE name = $1', [name]);
      const deleted = rows.map((r) => ({ name, version: int(r, 'version'), sha256: str(r, 'sha256') }));
      await this.appendEvents(tx, actor, [
        { action: 'model.deleted', model: name, version: null, details: { versions: deleted.map((d) => d.version), force: options.force === true } },
      ]);
      return deleted;
    });
  }

  async artifactReferences(sha256: string): Promise<number> {
    const rows = await this.db.all('SELECT COUNT(*) AS n FROM versions WHERE sha256 = $1', [sha256]);
    return intOrNull(rows[0], 'n') ?? 0;
  }

  // ---- profiles ----

  async setProfile(name: string, version: number, profile: InputProfile, actor: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await this.lockModel(tx, name);
      await this.requireVersion(tx, name, version);
      const at = new Date().toISOString();
      await tx.run('UPDATE versions SET profile = $1, updated_at = $2 WHERE model = $3 AND version = $4', [JSON.stringify(profile), at, name, version]);
      await this.appendEvents(tx, actor, [
        {
          action: 'profile.set',
          model: name,
          version,
          details: { features: profile.features.length, rows: profile.rows, ...(profile.source !== undefined ? { source: profile.source } : {}) },
        },
      ]);
    });
  }

  async getProfile(name: string, version: number): Promise<InputProfile | null> {
    const rows = await this.db.all('SELECT profile FROM versions WHERE model = $1 AND version = $2', [name, version]);
    const row = rows[0];
    if (row === undefined) throw new ModelNotFoundError(name, String(version));
    return row['profile'] === null ? null : json<InputProfile>(row, 'profile');
  }

  // ---- events ----

  async events(query: EventQuery): Promise<RegistryEvent[]> {
    const params: Param[] = [query.sinceEventId ?? 0];
    let sql = 'SELECT id, at, actor, action, model, version, details FROM events WHERE id > $1';
    if (query.model !== undefined) {
      params.push(query.model);
      sql += ` AND model = $${params.length}`;
    }
    params.push(query.limit ?? 1000);
    sql += ` ORDER BY id LIMIT $${params.length}`;
    return (await this.db.all(sql, params)).map(eventFromRow);
  }

  async lastEventId(): Promise<number> {
    const rows = await this.db.all('SELECT MAX(id) AS id FROM events');
    return intOrNull(rows[0], 'id') ?? 0;
  }
}
