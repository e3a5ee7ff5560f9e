import { type Insertable, type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB, WebhookInboxTable } from '../schema';

/**
 * The one seam between the two databases (Kysely's and pg-boss's pattern): what each can do, as
 * capability flags, and the bulk writes whose fastest form differs between them, one file per
 * operation per database side by side in this folder (`<operation>.sqlite.ts`,
 * `<operation>.postgres.ts`). Code outside src/store asks a capability or calls an operation,
 * never which database it runs on.
 */
export interface Engine {
  /** For display only (health, `migrate`): never branch on it. */
  readonly name: 'sqlite' | 'postgres';
  readonly can: Capabilities;
  /**
   * Stores a request's mapped events in the stream's outbox, deduplicated on (stream, event id),
   * and counts the duplicates on the stream; the event ids stored. Concurrent requests share one
   * commit, and each is answered only after the commit that holds its rows.
   */
  insertStreamEvents(job: StreamEventsJob): Promise<Set<string>>;
  /** Stores a validated cohort-webhook message once per (source, message_id): its id, or null for a repeat. */
  insertInboxMessage(values: InboxValues): Promise<number | null>;
  /**
   * Records delivery answers on leased ledger rows and releases their leases (see
   * ledger-outcomes.*.ts for the rule when the wish changed in flight). `db` is the caller's
   * transaction when other writes must commit with these, else the store's handle. Returns the
   * outcomes that settled their row (written, and the wish unchanged since it was sent), each
   * with the run the row belongs to, for the run history written in the same transaction.
   */
  writeLedgerOutcomes<T extends LedgerOutcome>(
    db: Kysely<DB>,
    workerId: string,
    outcomes: T[],
    nowMs: number,
  ): Promise<Array<SettledLedgerOutcome<T>>>;
  /**
   * Leases the due ledger rows of up to `users` users of a destination, every due row of a user
   * in the same claim; the rows leased.
   */
  claimLedgerRows(db: Kysely<DB>, claim: LedgerClaim): Promise<ClaimedLedgerRow[]>;
  /**
   * Appends run records, ids already resolved, in the caller's transaction (`db` is one). Each
   * record's seq is one past the last of its user in its run, so two records of one user (in one
   * call or not) never collide.
   */
  insertRunRecords(db: Kysely<DB>, records: RunRecordValues[]): Promise<void>;
  /**
   * Readies the caller's transaction for set operations over a whole snapshot (a run's diff),
   * scoped to that transaction.
   */
  prepareDiffTransaction(trx: Kysely<DB>): Promise<void>;
  /** A writer of one run's snapshot, where the diff reads it (`stagedAt`). */
  stageSnapshot(runId: string): SnapshotStage;
  /** Discards a run's own snapshot tables, if the database has them (its `staging` rows stay); from any process. */
  dropStagedSnapshot(runId: string): Promise<void>;
  /**
   * Replaces a cohort's members in ONE transaction: `before` runs first in it, then every batch
   * of ids is added (duplicates absorbed by the key), then `after` with the rows added, which
   * it returns. A failure anywhere leaves the previous members.
   */
  importCohortMembers(job: CohortMembersImport): Promise<number>;
}

/**
 * Where a run's snapshot lives while it is diffed.
 * - 'temp' (SQLite): a per-connection TEMP table, never WAL-logged.
 * - 'cohort' (with `inPlaceSnapshot`): a file-imported cohort's own `cohort_members` rows, diffed
 *   where they are, as every read of a run is made inside one transaction.
 * - 'table' (PostgreSQL): UNLOGGED, unindexed tables of the run's own, which any connection
 *   (and recovery, from another process) reaches by name.
 * - 'staging': rows of `staging` keyed by run_id: held runs, whose snapshot must survive a
 *   restart (and a re-import) until `runs approve`.
 */
export type StagedAt = 'temp' | 'cohort' | 'table' | 'staging';

export interface SnapshotStage {
  readonly stagedAt: StagedAt;
  /** Adds one external id; returns a promise only when a batch is written, so a tight reader loop awaits once per batch. */
  add(externalId: string): Promise<void> | void;
  flush(): Promise<void>;
  /** Adds the ids a `SELECT external_id …` returns, copied in the database. */
  addSelected(ids: RawBuilder<unknown>): Promise<void>;
  /** Flushes and makes the snapshot readable; the number of distinct ids staged. */
  finish(): Promise<number>;
}

/** Runs one statement inside the import's transaction. */
export type ExecInTransaction = (q: RawBuilder<unknown>) => Promise<unknown>;

export interface CohortMembersImport {
  cohortId: string;
  batches: AsyncIterable<string[]>;
  before: (exec: ExecInTransaction) => Promise<void>;
  after: (exec: ExecInTransaction, inserted: number) => Promise<void>;
}

export interface Capabilities {
  /** One transaction reads one snapshot of the whole database, so a file cohort's members are diffed where they are. */
  inPlaceSnapshot: boolean;
  /** Claims take `FOR UPDATE SKIP LOCKED`: concurrent claimers skip each other's rows instead of queueing. */
  skipLockedClaims: boolean;
  /** `SELECT … FOR UPDATE` locks rows; without it a write transaction already excludes every other writer. */
  rowLocks: boolean;
  /** Jobs run inside the process that opened the store (there is no separate worker to start). */
  embeddedJobRunner: boolean;
}

export type InboxValues = Omit<Insertable<WebhookInboxTable>, 'id' | 'applied_at' | 'error'>;

export interface LedgerOutcome {
  syncId: string;
  externalId: string;
  /** The `desired` value the request carried. */
  sent: number;
  outcome: 'delivered' | 'not_found' | 'failed' | 'retry';
  error: string | null;
  attempts: number;
  nextAttemptAt: number | null;
}

export interface StreamEventRow {
  stream_id: string;
  event_id: string;
  kind: string;
  payload: string;
  status: 'pending' | 'dead';
  next_attempt_at: number;
  reason: string | null;
  received_at: number;
}

export interface StreamEventsJob {
  streamId: string;
  rows: StreamEventRow[];
  /** Duplicates already dropped within the request's own body (counted on the stream too). */
  extra: number;
}

/** An outcome that settled its ledger row, and the run that row belongs to (null: none). */
export interface SettledLedgerOutcome<T extends LedgerOutcome = LedgerOutcome> {
  outcome: T;
  runId: string | null;
}

export interface LedgerClaim {
  destinationId: string;
  workerId: string;
  users: number;
  nowMs: number;
  leaseUntil: number;
}

/** One run record as stored (migration 010), but its seq, which the insert works out. */
export interface RunRecordValues {
  run_key: number;
  external_id: string;
  code: number;
  status: number | null;
  attempts: number;
  /** Unix seconds. */
  at: number;
  message_id: number | null;
}

export interface ClaimedLedgerRow {
  sync_id: string;
  external_id: string;
  desired: number;
  attempts: number;
  run_id: string | null;
  /** When the user last became a member (epoch ms), for entry-time tags; null when unknown. */
  entered_at: number | null;
}

/** Rows waiting to be sent: desired != confirmed, never tried or due for retry, lease free. */
export function ledgerDue(now: number, alias?: string): RawBuilder<unknown> {
  const c = (col: string) => (alias ? sql.ref(`${alias}.${col}`) : sql.ref(col));
  return sql`${c('desired')} <> ${c('confirmed')} AND (${c('outcome')} IS NULL OR (${c('outcome')} = 'retry' AND ${c('next_attempt_at')} <= ${now}))
    AND (${c('lease_until')} IS NULL OR ${c('lease_until')} < ${now})`;
}
