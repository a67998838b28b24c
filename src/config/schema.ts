/**
 * The server configuration: one schema, one optional YAML/JSON file, environment overrides, and
 * defaults that work with no file at all. Unknown keys are errors naming the key.
 */
import Type, { type Static } from 'typebox';
import type { MetricsConfig, SloConfig } from '../observability/config.js';
import { SecurityConfigSchema } from '../security/config.js';

export const ServerConfigSchema = Type.Object(
  {
    model_repository: Type.String({ default: './models' }),
    /**
     * The model registry: `sqlite:<file>` or `postgres://user@host:port/db`. When absent,
     * `$INFERD_REGISTRY`, else `sqlite:$INFERD_HOME/registry.db`; it is opened only when set
     * (here or in the environment) or when a `models` entry names a registry reference.
     */
    registry: Type.Optional(Type.String({ minLength: 1 })),
    registry_options: Type.Object(
      {
        /** Artifacts live under `<home>/artifacts`; default the SQLite file's directory, else $INFERD_HOME. */
        home: Type.Optional(Type.String({ minLength: 1 })),
        /** How long a SQLite write waits for another connection's lock before failing. */
        busy_timeout_ms: Type.Integer({ minimum: 0, default: 5000 }),
        /** How long a PostgreSQL connection attempt may take before failing. */
        connect_timeout_ms: Type.Integer({ minimum: 100, default: 5000 }),
        /** Where registered artifacts live: a directory, or `s3://bucket/prefix` shared by replicas (see src/storage). */
        artifacts: Type.Optional(Type.String({ minLength: 1 })),
      },
      { additionalProperties: false, default: {} },
    ),
    /**
     * Models to serve beyond what the repository holds, and per-model loading options. Each entry
     * names a registry reference (`fraud@champion`, `fraud@Production`, `fraud@3`) or an on-disk
     * repository model; see src/models/served.ts.
     */
    models: Type.Array(
      Type.Object(
        {
          registry: Type.Optional(Type.String({ minLength: 1 })),
          repository: Type.Optional(Type.String({ minLength: 1 })),
          /** Name clients use; default the registered name (registry entries only). */
          name: Type.Optional(Type.String({ minLength: 1 })),
          /** eager: loaded before the server is ready; lazy: loaded by its first request. */
          load: Type.Union([Type.Literal('eager'), Type.Literal('lazy')], { default: 'eager' }),
          /** Serving configuration of a registry model, with the keys of a config.yaml. */
          config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          /** Traffic policy (split, canary, blue_green, shadow); checked by src/routing/config.ts. */
          traffic: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        },
        { additionalProperties: false },
      ),
      { default: [] },
    ),
    server: Type.Object(
      {
        host: Type.String({ default: '0.0.0.0' }),
        http_port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000 }),
        /** 0 picks a free port; -1 turns the gRPC door off. */
        grpc_port: Type.Integer({ minimum: -1, maximum: 65535, default: 8001 }),
        body_limit_bytes: Type.Integer({ minimum: 1024, default: 16 * 1024 * 1024 }),
        /** JSON infer bodies of at least this many bytes are decoded in a decoder thread, off the event loop; 0 = never. */
        json_offload_bytes: Type.Integer({ minimum: 0, default: 64 * 1024 }),
        /** Threads that decode those bodies. */
        json_decode_threads: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
        /**
         * Decode those bodies while they arrive (when their length is known), rather than once they
         * are in. Off by default: on the 2-core reference machine the copy into shared memory cost
         * the event loop more than the overlap saved (bench/README.md, Serving core).
         */
        json_decode_arriving: Type.Boolean({ default: false }),
        /**
         * Nice value of the model worker threads (and the threads onnxruntime starts from them) and
         * of the JSON decoder threads (Linux; 0 keeps the process's priority): the event loop then
         * gets a core first when they saturate the machine, so health checks and small requests stay
         * prompt. Off by default: the lowered threads also yield to other processes at normal
         * priority, which on a shared machine cost throughput (bench/README.md, Serving core).
         */
        worker_nice: Type.Integer({ minimum: 0, maximum: 19, default: 0 }),
        grpc_max_message_bytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
        keep_alive_timeout_ms: Type.Integer({ minimum: 0, default: 72_000 }),
        /** Bound on the time a client may take to send a request's headers and body. */
        request_timeout_ms: Type.Integer({ minimum: 0, default: 60_000 }),
        /** Largest answer (output tensor bytes) built for one request; larger ones are refused with 400 before encoding. */
        max_response_bytes: Type.Integer({ minimum: 1024, default: 64 * 1024 * 1024 }),
        /** Requests in the pipeline at once; past it new ones get 503 + Retry-After at once instead of queueing without bound. */
        max_inflight_requests: Type.Integer({ minimum: 1, default: 1024 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The prediction cache (src/cache): memory bound, and Redis shared by every replica. Models opt in with `cache:` in their config. */
    cache: Type.Object(
      {
        memory_bytes: Type.Integer({ minimum: 0, default: 64 * 1024 * 1024 }),
        /** `redis://host:port/db`; without it answers are cached per replica only. */
        redis_url: Type.Optional(Type.String({ pattern: '^rediss?://' })),
        /** Bound on one Redis command; past it the request carries on without the shared tier. */
        redis_timeout_ms: Type.Integer({ minimum: 1, default: 100 }),
        /** With Redis: one replica computes a missing answer while the others wait for it, up to this long; 0 = off. */
        shared_lock_ms: Type.Integer({ minimum: 0, default: 2000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    model_control: Type.Object(
      {
        /** none: load every model at start; explicit: load/unload by API only; poll: also watch the repository and the registry. */
        mode: Type.Union([Type.Literal('none'), Type.Literal('explicit'), Type.Literal('poll')], { default: 'none' }),
        /** Models to load at start in explicit mode (on-disk names or served registry names). */
        startup_models: Type.Array(Type.String(), { default: [] }),
        poll_interval_ms: Type.Integer({ minimum: 100, default: 5000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    shutdown: Type.Object(
      {
        /** Bound on draining accepted requests after SIGTERM/SIGINT; past it they get 503. */
        deadline_ms: Type.Integer({ minimum: 0, default: 30_000 }),
        /**
         * After the drain, the listener stays open this long answering 503 with Connection: close,
         * so keep-alive clients learn to go elsewhere instead of meeting a reset.
         */
        lame_duck_ms: Type.Integer({ minimum: 0, default: 1000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    logging: Type.Object(
      {
        level: Type.Union(
          ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((l) => Type.Literal(l)),
          { default: 'info' },
        ),
        pretty: Type.Boolean({ default: false }),
        /** One line per request (method, route, model, version, status, latency, request id). */
        access_log: Type.Boolean({ default: true }),
      },
      { additionalProperties: false, default: {} },
    ),
    tracing: Type.Object(
      {
        /** OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces); tracing is off without it. */
        otlp_endpoint: Type.Optional(Type.String({ minLength: 1 })),
        service_name: Type.String({ default: 'inferd' }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** The Kafka front door (src/streaming/kafka): off unless `enabled`; see README "Kafka". */
    kafka: Type.Object(
      {
        enabled: Type.Boolean({ default: false }),
        brokers: Type.Array(Type.String({ minLength: 1 }), { default: [] }),
        client_id: Type.String({ minLength: 1, default: 'inferd' }),
        group_id: Type.String({ minLength: 1, default: 'inferd' }),
        group_instance_id: Type.Optional(Type.String({ minLength: 1 })),
        request_topics: Type.Array(Type.String({ minLength: 1 }), { default: ['inferd-requests'] }),
        reply_topic: Type.String({ minLength: 1, default: 'inferd-responses' }),
        dead_letter_topic: Type.String({ minLength: 1, default: 'inferd-dead-letters' }),
        delivery: Type.Union([Type.Literal('exactly_once'), Type.Literal('at_least_once')], { default: 'exactly_once' }),
        transactional_id: Type.Optional(Type.String({ minLength: 1 })),
        default_model: Type.Optional(Type.String({ minLength: 1 })),
        max_batch_records: Type.Integer({ minimum: 1, maximum: 100_000, default: 500 }),
        batch_linger_ms: Type.Integer({ minimum: 0, maximum: 10_000, default: 5 }),
        max_poll_interval_ms: Type.Integer({ minimum: 1000, default: 300_000 }),
        session_timeout_ms: Type.Integer({ minimum: 1000, default: 30_000 }),
        heartbeat_interval_ms: Type.Integer({ minimum: 100, default: 3000 }),
        transaction_timeout_ms: Type.Integer({ minimum: 1000, default: 60_000 }),
        pause_queue_fraction: Type.Number({ exclusiveMinimum: 0, maximum: 1, default: 0.8 }),
        resume_queue_fraction: Type.Number({ minimum: 0, exclusiveMaximum: 1, default: 0.3 }),
        lag_interval_ms: Type.Integer({ minimum: 0, default: 5000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Distributed batch scoring (src/streaming/batch): workers in this server, and job status. */
    batch: Type.Object(
      {
        /** Redis holding the jobs (redis://host:6379); job status and workers need it. */
        redis: Type.Optional(Type.String({ minLength: 1 })),
        /** Chunks this server scores at once as a batch worker; 0: not a worker. */
        workers: Type.Integer({ minimum: 0, maximum: 64, default: 0 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Traffic management across replicas sharing the registry database (src/routing). */
    traffic: Type.Object(
      {
        /** How often a replica reads policy and canary changes other replicas stored. */
        refresh_interval_ms: Type.Integer({ minimum: 100, default: 1000 }),
        /** Term of the lease naming the one replica that drives canaries; renewed every third of it. */
        lease_ttl_ms: Type.Integer({ minimum: 500, default: 15_000 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Object storage: `s3://` and `http(s)://` model repositories and registry artifacts (src/storage). */
    storage: Type.Object(
      {
        /** Local cache of downloaded artifacts; default $INFERD_HOME/cache. */
        cache_dir: Type.Optional(Type.String({ minLength: 1 })),
        s3: Type.Object(
          {
            /** S3-compatible endpoint (MinIO, SeaweedFS, Ceph...); default AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS. */
            endpoint: Type.Optional(Type.String({ minLength: 1 })),
            region: Type.Optional(Type.String({ minLength: 1 })),
            /** Default true with a custom endpoint. */
            force_path_style: Type.Optional(Type.Boolean()),
            max_attempts: Type.Integer({ minimum: 1, maximum: 20, default: 5 }),
            connect_timeout_ms: Type.Integer({ minimum: 100, default: 5000 }),
            request_timeout_ms: Type.Integer({ minimum: 0, default: 120_000 }),
          },
          { additionalProperties: false, default: {} },
        ),
        /** Objects this large or larger download as parallel ranged GETs of this size. */
        part_size_bytes: Type.Integer({ minimum: 1024 * 1024, default: 16 * 1024 * 1024 }),
        concurrency: Type.Integer({ minimum: 1, maximum: 32, default: 4 }),
      },
      { additionalProperties: false, default: {} },
    ),
    /** Validated by src/observability/config.ts (snake_case keys here, see README). */
    metrics: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    slo: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    /** Authentication, authorisation, rate limits, TLS, audit log, artifact encryption (src/security/config.ts); off by default. */
    security: SecurityConfigSchema,
  },
  { additionalProperties: false },
);

type RawServerConfig = Static<typeof ServerConfigSchema>;

/** The validated configuration: metrics and slo sections in their checked, complete form. */
export type ServerConfig = Omit<RawServerConfig, 'metrics' | 'slo'> & { metrics: MetricsConfig; slo: SloConfig };
export type { RawServerConfig };
