import type { Insertable, Kysely } from 'kysely';
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
}

export interface Capabilities {
  /** One transaction reads one snapshot of the whole database, so a file cohort's members are diffed where they are. */
  inPlaceSnapshot: boolean;
  /** Claims take `FOR UPDATE SKIP LOCKED`: concurrent claimers skip each other's rows instead of queueing. */
  skipLockedClaims: boolean;
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
