/**
 * The registry schema, one list of statements per dialect and per version. A store applies the
 * versions its database lacks when it opens, recording the result in `schema_version`.
 */
export interface Migration {
  version: number;
  sqlite: string[];
  postgres: string[];
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sqlite: [
      `CREATE TABLE models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        next_version INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      )`,
      `CREATE TABLE versions (
        model TEXT NOT NULL REFERENCES models(name),
        version INTEGER NOT NULL,
        semver TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '{}',
        lineage TEXT NOT NULL DEFAULT '{}',
        signature TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        artifact_size INTEGER NOT NULL,
        stage TEXT NOT NULL DEFAULT 'None' CHECK (stage IN ('None', 'Staging', 'Production', 'Archived')),
        profile TEXT,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (model, version),
        UNIQUE (model, semver),
        UNIQUE (model, sha256)
      )`,
      `CREATE INDEX versions_sha256 ON versions (sha256)`,
      `CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES versions (model, version)
      )`,
      `CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT NOT NULL,
        version INTEGER,
        details TEXT NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX events_model ON events (model, id)`,
    ],
    postgres: [
      `CREATE TABLE models (
        name TEXT PRIMARY KEY,
        description TEXT NOT NULL DEFAULT '',
        tags JSON NOT NULL DEFAULT '{}',
        next_version INTEGER NOT NULL DEFAULT 1,
        created_at TIMESTAMPTZ NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
      )`,
      `CREATE TABLE versions (
        model TEXT NOT NULL REFERENCES models (name),
        version INTEGER NOT NULL,
        semver TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        tags JSON NOT NULL DEFAULT '{}',
        lineage JSON NOT NULL DEFAULT '{}',
        signature JSON NOT NULL,
        sha256 TEXT NOT NULL,
        artifact_size BIGINT NOT NULL,
        stage TEXT NOT NULL DEFAULT 'None' CHECK (stage IN ('None', 'Staging', 'Production', 'Archived')),
        profile JSON,
        created_at TIMESTAMPTZ NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (model, version),
        UNIQUE (model, semver),
        UNIQUE (model, sha256)
      )`,
      `CREATE INDEX versions_sha256 ON versions (sha256)`,
      `CREATE TABLE aliases (
        model TEXT NOT NULL,
        alias TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES versions (model, version)
      )`,
      `CREATE TABLE events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        model TEXT NOT NULL,
        version INTEGER,
        details JSON NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX events_model ON events (model, id)`,
    ],
  },
  {
    // Security: API keys (only a keyed hash of each secret), the audit hash chain and its
    // signed checkpoints. Times are epoch milliseconds; audit fields are text in both dialects
    // so what was hashed is read back byte for byte.
    version: 2,
    sqlite: [
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        roles TEXT NOT NULL DEFAULT '[]',
        models TEXT,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        expires_at INTEGER,
        previous_hash TEXT,
        previous_expires_at INTEGER,
        rotated_at INTEGER,
        revoked_at INTEGER
      )`,
      `CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      `CREATE INDEX audit_log_hash ON audit_log (hash)`,
      `CREATE TABLE audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        hash TEXT NOT NULL,
        key_id TEXT NOT NULL,
        signature TEXT NOT NULL
      )`,
    ],
    postgres: [
      `CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        hash TEXT NOT NULL,
        roles TEXT NOT NULL DEFAULT '[]',
        models TEXT,
        created_at BIGINT NOT NULL,
        created_by TEXT NOT NULL,
        expires_at BIGINT,
        previous_hash TEXT,
        previous_expires_at BIGINT,
        rotated_at BIGINT,
        revoked_at BIGINT
      )`,
      `CREATE TABLE audit_log (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        outcome TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      )`,
      `CREATE INDEX audit_log_hash ON audit_log (hash)`,
      `CREATE TABLE audit_checkpoints (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        hash TEXT NOT NULL,
        key_id TEXT NOT NULL,
        signature TEXT NOT NULL
      )`,
    ],
  },
  {
    // Traffic management: routing policies and canary state, their events, which variant
    // served a request, and the feedback outcomes joined to it. Times are epoch milliseconds.
    version: 3,
    sqlite: [
      `CREATE TABLE traffic_policies (
        model TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '{}',
        revision INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL,
        updated_by TEXT NOT NULL
      )`,
      `CREATE TABLE traffic_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        model TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX traffic_events_model ON traffic_events (model, id)`,
      `CREATE TABLE traffic_assignments (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        variant TEXT NOT NULL,
        at_ms INTEGER NOT NULL
      )`,
      `CREATE INDEX traffic_assignments_model ON traffic_assignments (model, variant)`,
      `CREATE TABLE traffic_feedback (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        variant TEXT NOT NULL,
        outcome REAL,
        label TEXT,
        at_ms INTEGER NOT NULL
      )`,
      `CREATE INDEX traffic_feedback_model ON traffic_feedback (model, variant)`,
    ],
    postgres: [
      `CREATE TABLE traffic_policies (
        model TEXT PRIMARY KEY,
        policy TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT '{}',
        revision INTEGER NOT NULL,
        updated_at_ms BIGINT NOT NULL,
        updated_by TEXT NOT NULL
      )`,
      `CREATE TABLE traffic_events (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at_ms BIGINT NOT NULL,
        model TEXT NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
      )`,
      `CREATE INDEX traffic_events_model ON traffic_events (model, id)`,
      `CREATE TABLE traffic_assignments (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        variant TEXT NOT NULL,
        at_ms BIGINT NOT NULL
      )`,
      `CREATE INDEX traffic_assignments_model ON traffic_assignments (model, variant)`,
      `CREATE TABLE traffic_feedback (
        request_id TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        variant TEXT NOT NULL,
        outcome DOUBLE PRECISION,
        label TEXT,
        at_ms BIGINT NOT NULL
      )`,
      `CREATE INDEX traffic_feedback_model ON traffic_feedback (model, variant)`,
    ],
  },
  {
    // Traffic across replicas: the lease naming the one replica that drives canaries, and each
    // replica's per-second request counters (latencies as a log-bucket histogram) for its analysis.
    version: 4,
    sqlite: [
      `CREATE TABLE traffic_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        acquired_at_ms INTEGER NOT NULL
      )`,
      `CREATE TABLE traffic_counters (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        replica TEXT NOT NULL,
        second_ms INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latencies TEXT NOT NULL,
        quality_n INTEGER NOT NULL,
        quality_sum REAL NOT NULL,
        PRIMARY KEY (model, version, replica, second_ms)
      )`,
      `CREATE INDEX traffic_counters_time ON traffic_counters (model, second_ms)`,
    ],
    postgres: [
      `CREATE TABLE traffic_leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at_ms BIGINT NOT NULL,
        acquired_at_ms BIGINT NOT NULL
      )`,
      `CREATE TABLE traffic_counters (
        model TEXT NOT NULL,
        version TEXT NOT NULL,
        replica TEXT NOT NULL,
        second_ms BIGINT NOT NULL,
        requests INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        latencies TEXT NOT NULL,
        quality_n INTEGER NOT NULL,
        quality_sum DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (model, version, replica, second_ms)
      )`,
      `CREATE INDEX traffic_counters_time ON traffic_counters (model, second_ms)`,
    ],
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
