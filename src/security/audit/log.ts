/**
 * The audit log in the registry database: an append-only hash chain (audit_log) and signed
 * checkpoints (audit_checkpoints). Appends are serialised (PostgreSQL: an advisory lock held to
 * commit; SQLite: the write transaction), so replicas sharing one database extend one chain.
 *
 * `verify` re-reads everything and names each problem: an edited record (its hash no longer
 * matches its content), a deleted one (a gap in the sequence, or a checkpointed record gone),
 * records moved to another place (content that hashes right under a different sequence
 * number), a record rewritten with a fresh hash (the next record's link breaks), and a chain
 * rewritten past a checkpoint (the signed hash differs).
 */
import { InvalidInputError } from '../../core/errors.js';
import type { Queryable, SqlDriver } from '../../registry/sql/driver.js';
import { num, text, type Row } from '../database.js';
import { canonicalJson, GENESIS_HASH, HmacCheckpointKey, recordHash, type AuditCheckpoint, type AuditRecord, type CheckpointSigner, type CheckpointVerifier } from './chain.js';

const AUDIT_LOCK = 7_301_013;
const PAGE = 1000;

export interface AuditEntry {
  actor: string;
  action: string;
  target: string;
  outcome: string;
  details?: Record<string, unknown>;
}

export type AuditProblemKind = 'edited' | 'deleted' | 'reordered' | 'rewritten' | 'checkpoint_mismatch' | 'bad_signature' | 'unknown_key';

export interface AuditProblem {
  kind: AuditProblemKind;
  /** The record (or checkpoint) sequence number the problem is about. */
  seq: number;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  records: number;
  checkpoints: number;
  /** Checkpoints whose signature was checked (0 without the key). */
  signaturesChecked: number;
  head: { seq: number; hash: string } | null;
  problems: AuditProblem[];
}

export interface AuditLogOptions {
  /** Checkpoint key: an HMAC-SHA256 secret, or a signer (Ed25519); without one no checkpoints are written. */
  signingKey?: Buffer | CheckpointSigner;
  /** A checkpoint every this many records. Default 1000. */
  checkpointEvery?: number;
  now?: () => Date;
}

function rowToRecord(row: Row): AuditRecord {
  return {
    seq: num(row, 'seq'),
    at: text(row, 'at'),
    actor: text(row, 'actor'),
    action: text(row, 'action'),
    target: text(row, 'target'),
    outcome: text(row, 'outcome'),
    details: text(row, 'details'),
    prev_hash: text(row, 'prev_hash'),
    hash: text(row, 'hash'),
  };
}

function rowToCheckpoint(row: Row): AuditCheckpoint {
  return { seq: num(row, 'seq'), at: text(row, 'at'), hash: text(row, 'hash'), keyId: text(row, 'key_id'), signature: text(row, 'signature') };
}

export class AuditLog {
  private readonly signer: CheckpointSigner | undefined;
  private readonly every: number;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: SqlDriver,
    options: AuditLogOptions = {},
  ) {
    const key = options.signingKey;
    this.signer = key === undefined ? undefined : Buffer.isBuffer(key) ? new HmacCheckpointKey(key) : key;
    this.every = options.checkpointEvery ?? 1000;
    this.now = options.now ?? (() => new Date());
  }

  private async lock(tx: Queryable): Promise<void> {
    if (this.db.kind === 'postgres') await tx.all('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
  }

  private static async head(q: Queryable): Promise<{ seq: number; hash: string }> {
    const rows = await q.all('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
    return rows[0] === undefined ? { seq: 0, hash: GENESIS_HASH } : { seq: num(rows[0], 'seq'), hash: text(rows[0], 'hash') };
  }

  /** Appends one record and returns it; writes a checkpoint when one is due. */
  async append(entry: AuditEntry): Promise<AuditRecord> {
    return this.db.transaction(async (tx) => {
      await this.lock(tx);
      const head = await AuditLog.head(tx);
      const unsigned = {
        seq: head.seq + 1,
        at: this.now().toISOString(),
        actor: entry.actor,
        action: entry.action,
        target: entry.target,
        outcome: entry.outcome,
        details: canonicalJson(entry.details ?? {}),
        prev_hash: head.hash,
      };
      const record: AuditRecord = { ...unsigned, hash: recordHash(unsigned) };
      await tx.run('INSERT INTO audit_log (seq, at, actor, action, target, outcome, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        record.seq,
        record.at,
        record.actor,
        record.action,
        record.target,
        record.outcome,
        record.details,
        record.prev_hash,
        record.hash,
      ]);
      if (record.seq % this.every === 0) await this.writeCheckpoint(tx, record.seq, record.hash);
      return record;
    });
  }

  private async writeCheckpoint(tx: Queryable, seq: number, hash: string): Promise<AuditCheckpoint | undefined> {
    if (this.signer === undefined) return undefined;
    const at = this.now().toISOString();
    const checkpoint: AuditCheckpoint = { seq, at, hash, keyId: this.signer.keyId, signature: this.signer.sign(seq, at, hash) };
    await tx.run('INSERT INTO audit_checkpoints (seq, at, hash, key_id, signature) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING', [
      seq,
      at,
      hash,
      checkpoint.keyId,
      checkpoint.signature,
    ]);
    return checkpoint;
  }

  /** Signs the current head unless it is already checkpointed; undefined when there is nothing new. */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    return this.db.transaction(async (tx) => {
      await this.lock(tx);
      const head = await AuditLog.head(tx);
      if (head.seq === 0) return undefined;
      const last = await tx.all('SELECT MAX(seq) AS seq FROM audit_checkpoints');
      if (last[0] !== undefined && last[0]['seq'] !== null && num(last[0], 'seq') >= head.seq) return undefined;
      return this.writeCheckpoint(tx, head.seq, head.hash);
    });
  }

  /** Checkpoints the head every `intervalMs` (so a truncated tail is caught within that time). */
  startCheckpoints(intervalMs: number, onError: (error: unknown) => void): void {
    this.stopCheckpoints();
    this.timer = setInterval(() => void this.checkpoint().catch(onError), intervalMs);
    this.timer.unref();
  }

  stopCheckpoints(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Records in sequence order, `after` exclusive, a page at a time. */
  async *records(after = 0): AsyncGenerator<AuditRecord> {
    let cursor = after;
    for (;;) {
      const rows = await this.db.all(`SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`, [cursor]);
      for (const row of rows) yield rowToRecord(row);
      if (rows.length < PAGE) return;
      cursor = num(rows[rows.length - 1]!, 'seq');
    }
  }

  async checkpoints(): Promise<AuditCheckpoint[]> {
    return (await this.db.all('SELECT * FROM audit_checkpoints ORDER BY seq')).map(rowToCheckpoint);
  }

  /**
   * Checks the whole chain and every checkpoint. `verifier` checks signatures: an HMAC secret,
   * an Ed25519 public key (Ed25519CheckpointVerifier), or by default the log's own key.
   */
  async verify(verifier: Buffer | CheckpointVerifier | undefined = this.signer): Promise<AuditVerification> {
    const key = Buffer.isBuffer(verifier) ? new HmacCheckpointKey(verifier) : verifier;
    const problems: AuditProblem[] = [];
    let prevHash = GENESIS_HASH;
    let expected = 1;
    let count = 0;
    let previousFlagged = false;
    let head: { seq: number; hash: string } | null = null;
    for await (const record of this.records()) {
      count += 1;
      let gap = false;
      if (record.seq > expected) {
        gap = true;
        const range = record.seq - 1 === expected ? `record ${expected} is` : `records ${expected} to ${record.seq - 1} are`;
        problems.push({ kind: 'deleted', seq: expected, message: `${range} missing (deleted)` });
      }
      const { hash, ...unsigned } = record;
      let flagged = false;
      if (recordHash(unsigned) !== hash) {
        flagged = true;
        const moved = await this.originalPlace(record);
        if (moved !== undefined) {
          problems.push({ kind: 'reordered', seq: record.seq, message: `record ${record.seq} holds the content of record ${moved} (records were re-ordered)` });
        } else {
          problems.push({ kind: 'edited', seq: record.seq, message: `record ${record.seq} was edited: its content no longer matches its hash` });
        }
      } else if (record.prev_hash !== prevHash && !gap && !previousFlagged) {
        flagged = true;
        const culprit = record.seq - 1;
        problems.push({
          kind: 'rewritten',
          seq: culprit,
          message: `record ${culprit} was rewritten (content and hash replaced): record ${record.seq} links to a different hash`,
        });
      }
      previousFlagged = flagged;
      prevHash = hash;
      expected = record.seq + 1;
      head = { seq: record.seq, hash };
    }
    const checkpoints = await this.checkpoints();
    let signaturesChecked = 0;
    for (const cp of checkpoints) {
      if (key !== undefined) {
        if (cp.keyId !== key.keyId) {
          problems.push({ kind: 'unknown_key', seq: cp.seq, message: `checkpoint at record ${cp.seq} is signed by key ${cp.keyId}, not the key given (${key.keyId})` });
        } else {
          signaturesChecked += 1;
          if (!key.verify(cp)) problems.push({ kind: 'bad_signature', seq: cp.seq, message: `checkpoint at record ${cp.seq} has an invalid signature (forged or edited)` });
        }
      }
      const rows = await this.db.all('SELECT * FROM audit_log WHERE seq = $1', [cp.seq]);
      if (rows[0] === undefined) {
        if (head === null || cp.seq > head.seq) {
          problems.push({ kind: 'deleted', seq: cp.seq, message: `records ${(head?.seq ?? 0) + 1} to ${cp.seq} are missing (deleted from the end; a signed checkpoint covers record ${cp.seq})` });
        } else if (!problems.some((p) => p.kind === 'deleted' && p.seq <= cp.seq)) {
          problems.push({ kind: 'deleted', seq: cp.seq, message: `record ${cp.seq}, covered by a signed checkpoint, is missing` });
        }
      } else if (text(rows[0], 'hash') !== cp.hash) {
        problems.push({ kind: 'checkpoint_mismatch', seq: cp.seq, message: `the chain up to record ${cp.seq} differs from its signed checkpoint (records were rewritten)` });
      }
    }
    // Report each problem once per record and kind, in sequence order.
    const seen = new Set<string>();
    const unique = problems
      .filter((p) => {
        const key = `${p.kind}:${p.seq}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      })
      .sort((a, b) => a.seq - b.seq);
    return { ok: unique.length === 0, records: count, checkpoints: checkpoints.length, signaturesChecked, head, problems: unique };
  }

  /** The sequence number a displaced record's content was hashed under, found through its link. */
  private async originalPlace(record: AuditRecord): Promise<number | undefined> {
    let candidate: number | undefined;
    if (record.prev_hash === GENESIS_HASH) {
      candidate = 1;
    } else {
      const rows = await this.db.all('SELECT seq FROM audit_log WHERE hash = $1', [record.prev_hash]);
      if (rows[0] !== undefined) candidate = num(rows[0], 'seq') + 1;
    }
    if (candidate === undefined || candidate === record.seq) return undefined;
    const { hash, ...unsigned } = record;
    return recordHash({ ...unsigned, seq: candidate }) === hash ? candidate : undefined;
  }
}
