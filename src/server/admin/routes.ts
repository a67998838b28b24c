/**
 * The admin REST API: the model registry (versions, aliases, stages, profiles, deletion) and the
 * serving state of every model (source, strategy, loads, swaps, failures).
 *
 *   GET    /v2/admin/models                                      serving state of every model
 *   GET    /v2/admin/models/{m}
 *   GET    /v2/admin/registry                                    which registry, reachable or not
 *   GET    /v2/admin/registry/models
 *   GET    /v2/admin/registry/models/{m}                         versions, aliases, stages, checksums, lineage
 *   POST   /v2/admin/registry/models/{m}/versions                {path, description?, tags?, semver?, source?, run_id?, metrics?, training_data?}
 *   GET    /v2/admin/registry/models/{m}/versions/{v}
 *   PUT    /v2/admin/registry/models/{m}/aliases/{alias}         {version, expected?}
 *   DELETE /v2/admin/registry/models/{m}/aliases/{alias}         {expected?}
 *   POST   /v2/admin/registry/models/{m}/versions/{v}/stage      {stage, archive_existing_versions?, expected?}
 *   POST   /v2/admin/registry/models/{m}/versions/{v}/profile    {reference, exclude?}
 *   DELETE /v2/admin/registry/models/{m}/versions/{v}[?force=true]
 *   GET    /v2/admin/registry/events[?model=m&since=id&limit=n]
 *
 * Errors use the OIP body `{"error": "..."}`. A refused precondition (a compare-and-set that
 * lost, deleting a serving version or one an alias holds) is 409; a lost compare-and-set also
 * carries `current`, the version the alias or stage points to now. A registry that is locked or
 * unreachable is 503 naming the store; serving is not affected.
 *
 * Registering takes a path on the server's file system: expose this API only to operators.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import Type, { type TSchema } from 'typebox';
import { validate } from '../../config/validate.js';
import { InferdError, InvalidInputError, ModelNotFoundError, toInferdError } from '../../core/errors.js';
import type { ModelControl } from '../../models/control.js';
import type { ModelManager } from '../../models/manager.js';
import type { RegistryLink } from '../../models/registry-link.js';
import { parseVersionNumber } from '../../registry/names.js';
import { asActor, type Registry } from '../../registry/registry.js';
import type { ModelVersion } from '../../registry/types.js';
import { profileFromCsv, type InputProfile } from '../../validation/ranges.js';
import type { ControlCall, ServingPlane } from '../../pipeline/types.js';

export interface AdminOptions {
  manager: ModelManager;
  plane: ServingPlane;
  /** Absent when no registry is configured: the registry routes then answer 404 saying so. */
  registry?: RegistryLink;
  /** Told about registry changes made here, so poll mode picks them up at once. */
  control?: Pick<ModelControl, 'pollSoon'>;
  logger?: Logger;
}

const Expected = Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]));

const RegisterBody = Type.Object(
  {
    path: Type.String({ minLength: 1 }),
    description: Type.Optional(Type.String()),
    tags: Type.Optional(Type.Record(Type.String(), Type.String())),
    semver: Type.Optional(Type.String()),
    source: Type.Optional(Type.String()),
    run_id: Type.Optional(Type.String()),
    metrics: Type.Optional(Type.Record(Type.String(), Type.Number())),
    training_data: Type.Optional(Type.String({ minLength: 1 })),
  },
  { additionalProperties: false },
);
const AliasBody = Type.Object({ version: Type.Integer({ minimum: 1 }), expected: Expected }, { additionalProperties: false });
const AliasDeleteBody = Type.Object({ expected: Expected }, { additionalProperties: false });
const StageBody = Type.Object(
  { stage: Type.String({ minLength: 1 }), archive_existing_versions: Type.Boolean({ default: false }), expected: Expected },
  { additionalProperties: false },
);
const ProfileBody = Type.Object(
  { reference: Type.String({ minLength: 1 }), exclude: Type.Array(Type.String(), { default: [] }) },
  { additionalProperties: false },
);

function body<T>(schema: TSchema, value: unknown): T {
  return validate<T>(schema, value ?? {}, 'request body');
}

/** `expected` as the registry takes it: absent means unconditional. */
function cas(expected: number | null | undefined): { expected?: number | null } {
  return expected === undefined ? {} : { expected };
}

function profileSummary(profile: InputProfile) {
  return {
    rows: profile.rows,
    excluded: profile.excluded,
    ...(profile.source ? { source: profile.source } : {}),
    created_at: profile.createdAt,
    features: profile.features.map((f) => ({ name: f.name, min: f.min, max: f.max, p01: f.p01, p99: f.p99, mean: f.mean, std: f.std })),
  };
}

type Params = { model: string; version: string; alias: string };
type Req = FastifyRequest<{ Params: Params; Querystring: Record<string, string | undefined> }>;

export function adminRoutes(options: AdminOptions): (app: FastifyInstance) => void {
  const { manager, registry: link, logger } = options;

  const registry = async (): Promise<Registry> => {
    if (!link) throw new InferdError('NOT_FOUND', 'no model registry is configured on this server (set `registry:` in the configuration or $INFERD_REGISTRY)');
    return link.get();
  };

  /** Registry calls go through here: an outage is recorded (and logged once) for the poller too. */
  const call = async <T>(fn: (r: Registry) => Promise<T>): Promise<T> => {
    const r = await registry();
    try {
      const result = await fn(r);
      link!.noteSuccess();
      return result;
    } catch (error) {
      if (toInferdError(error).code === 'UNAVAILABLE') link!.noteFailure(error);
      throw error;
    }
  };

  const versionView = (v: ModelVersion) => ({
    ...v,
    serving: manager.isServingRegistryVersion(v.name, v.version),
  });

  const changed = () => options.control?.pollSoon();

  /** Every admin call runs through the data plane's pipeline (security, audit, access log). */
  const act = <T>(req: FastifyRequest, call: ControlCall, perform: () => Promise<T>): Promise<T> =>
    // Registry events name the authenticated caller, when there is one.
    options.plane.control(req.ctx, call, () => asActor(req.ctx.identity?.subject, perform));
  const read = (action: string, model?: string): ControlCall => ({ action, write: false, ...(model !== undefined ? { model } : {}) });
  const write = (action: string, model: string, details: Record<string, unknown> = {}): ControlCall => ({ action, write: true, model, details });

  return (app) => {
    void app.register(async (scope) => {
      // ---- serving state ----
      scope.get('/v2/admin/models', async (req: Req) => act(req, read('admin.models'), async () => ({ models: await manager.status() })));
      scope.get('/v2/admin/models/:model', async (req: Req) => {
        const name = req.params.model;
        return act(req, read('admin.model', name), async () => {
          if (!manager.serving.has(name) && !(await manager.names().catch((): string[] => [])).includes(name)) throw new ModelNotFoundError(name);
          return manager.statusOf(name);
        });
      });

      // ---- registry ----
      scope.get('/v2/admin/registry', async (req: Req) =>
        act(req, read('registry.status'), async () => {
          if (!link) throw new InferdError('NOT_FOUND', 'no model registry is configured on this server');
          try {
            const r = await link.get();
            const last = await r.lastEventId();
            link.noteSuccess();
            return { registry: link.label, kind: r.store.kind, reachable: true, last_event_id: last, schema_version: await r.store.schemaVersion() };
          } catch (error) {
            link.noteFailure(error);
            return { registry: link.label, reachable: false, reason: toInferdError(error).message };
          }
        }),
      );

      scope.get('/v2/admin/registry/models', async (req: Req) => act(req, read('registry.models'), async () => ({ models: await call((r) => r.listModels()) })));

      scope.get('/v2/admin/registry/models/:model', async (req: Req) => {
        const name = req.params.model;
        return act(req, read('registry.model', name), () =>
          call(async (r) => {
            const model = await r.getModel(name);
            const versions = await r.listVersions(name);
            return {
              ...model,
              served_as: manager.served.servedFrom(name).map((s) => ({ name: s.name, reference: s.reference })),
              versions: versions.map(versionView),
            };
          }),
        );
      });

      scope.post('/v2/admin/registry/models/:model/versions', async (req: Req, reply: FastifyReply) => {
        const b = body<{
          path: string;
          description?: string;
          tags?: Record<string, string>;
          semver?: string;
          source?: string;
          run_id?: string;
          metrics?: Record<string, number>;
          training_data?: string;
        }>(RegisterBody, req.body);
        const version = await act(req, write('registry.register', req.params.model, { path: b.path }), () =>
          call((r) =>
            r.register(req.params.model, b.path, {
              ...(b.description !== undefined ? { description: b.description } : {}),
              ...(b.tags !== undefined ? { tags: b.tags } : {}),
              ...(b.semver !== undefined ? { semver: b.semver } : {}),
              ...(b.source !== undefined ? { source: b.source } : {}),
              ...(b.run_id !== undefined ? { runId: b.run_id } : {}),
              ...(b.metrics !== undefined ? { metrics: b.metrics } : {}),
              ...(b.training_data !== undefined ? { trainingData: b.training_data } : {}),
            }),
          ),
        );
        logger?.info({ model: version.name, version: version.version, sha256: version.artifact.sha256 }, 'registry: version registered');
        changed();
        return reply.code(201).send(versionView(version));
      });

      scope.get('/v2/admin/registry/models/:model/versions/:version', async (req: Req) => {
        const number = parseVersionNumber(req.params.version);
        return act(req, read('registry.version', req.params.model), () =>
          call(async (r) => {
            const v = await r.getVersion(req.params.model, number);
            const profile = v.hasProfile ? await r.getProfile(v.name, v.version) : null;
            return { ...versionView(v), profile: profile ? profileSummary(profile) : null };
          }),
        );
      });

      scope.put('/v2/admin/registry/models/:model/aliases/:alias', async (req: Req) => {
        const b = body<{ version: number; expected?: number | null }>(AliasBody, req.body);
        const move = await act(req, write('registry.alias', req.params.model, { alias: req.params.alias, version: b.version }), () =>
          call((r) => r.setAlias(req.params.model, req.params.alias, b.version, cas(b.expected))),
        );
        logger?.info({ model: move.name, alias: move.alias, from: move.previous, to: move.version }, 'registry: alias moved');
        changed();
        return move;
      });

      scope.delete('/v2/admin/registry/models/:model/aliases/:alias', async (req: Req) => {
        const b = body<{ expected?: number | null }>(AliasDeleteBody, req.body);
        const move = await act(req, write('registry.alias', req.params.model, { alias: req.params.alias, deleted: true }), () =>
          call((r) => r.deleteAlias(req.params.model, req.params.alias, cas(b.expected))),
        );
        logger?.info({ model: move.name, alias: move.alias, from: move.previous }, 'registry: alias deleted');
        changed();
        return move;
      });

      scope.post('/v2/admin/registry/models/:model/versions/:version/stage', async (req: Req) => {
        const number = parseVersionNumber(req.params.version);
        const b = body<{ stage: string; archive_existing_versions: boolean; expected?: number | null }>(StageBody, req.body);
        const move = await act(req, write('registry.stage', req.params.model, { version: number, stage: b.stage }), () =>
          call((r) => r.transitionStage(req.params.model, number, b.stage, { ...cas(b.expected), archiveExistingVersions: b.archive_existing_versions })),
        );
        logger?.info({ model: move.name, version: move.version, from: move.previousStage, to: move.stage, archived: move.archived }, 'registry: stage changed');
        changed();
        return move;
      });

      scope.post('/v2/admin/registry/models/:model/versions/:version/profile', async (req: Req) => {
        const number = parseVersionNumber(req.params.version);
        const b = body<{ reference: string; exclude: string[] }>(ProfileBody, req.body);
        return act(req, write('registry.profile', req.params.model, { version: number, reference: b.reference }), async () => {
          const profile = await profileFromCsv(b.reference, { exclude: b.exclude });
          await call((r) => r.setProfile(req.params.model, number, profile));
          logger?.info({ model: req.params.model, version: number, features: profile.features.length }, 'registry: input profile stored');
          changed();
          return profileSummary(profile);
        });
      });

      scope.delete('/v2/admin/registry/models/:model/versions/:version', async (req: Req) => {
        const number = parseVersionNumber(req.params.version);
        const force = req.query.force === 'true' || req.query.force === '1';
        await act(req, write('registry.delete', req.params.model, { version: number, force }), () => call((r) => r.deleteVersion(req.params.model, number, { force })));
        logger?.info({ model: req.params.model, version: number, force }, 'registry: version deleted');
        return { deleted: { name: req.params.model, version: number } };
      });

      scope.get('/v2/admin/registry/events', async (req: Req) => {
        const q = req.query;
        const since = q.since === undefined ? undefined : Number(q.since);
        const limit = q.limit === undefined ? undefined : Number(q.limit);
        if (since !== undefined && !(Number.isSafeInteger(since) && since >= 0)) throw new InvalidInputError(`'since' must be an event id, got '${q.since}'`);
        if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) throw new InvalidInputError(`'limit' must be a positive integer, got '${q.limit}'`);
        return act(req, read('registry.events', q.model), async () => ({
          events: await call((r) =>
            r.events({ ...(q.model !== undefined ? { model: q.model } : {}), ...(since !== undefined ? { sinceEventId: since } : {}), ...(limit !== undefined ? { limit } : {}) }),
          ),
        }));
      });
    });
  };
}
