import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { DB } from '../schema';
import { importCohortMembersSqlite } from './cohort-members.sqlite';
import type { Engine } from './engine';
import { inboxMessageInserter } from './inbox-message.sqlite';
import { claimLedgerRowsSqlite } from './ledger-claim.sqlite';
import { ledgerOutcomesWriter } from './ledger-outcomes.sqlite';
import { runRecordsInserter } from './run-records.sqlite';
import { dropSqliteSnapshot, sqliteSnapshotStage } from './stage-snapshot.sqlite';
import { streamEventsInserter } from './stream-events.sqlite';

const handles = new WeakMap<Engine, BetterSqlite3.Database>();

/** The embedded database: one connection, one writer, snapshots per transaction, jobs in-process. */
export function sqliteEngine(h: BetterSqlite3.Database, db: Kysely<DB>): Engine {
  const engine: Engine = {
    name: 'sqlite',
    can: { inPlaceSnapshot: true, skipLockedClaims: false, rowLocks: false, embeddedJobRunner: true },
    insertStreamEvents: streamEventsInserter(h, db),
    insertInboxMessage: inboxMessageInserter(h, db),
    writeLedgerOutcomes: ledgerOutcomesWriter(h),
    claimLedgerRows: claimLedgerRowsSqlite,
    insertRunRecords: runRecordsInserter(h),
    // Its diff walks sorted primary keys (MERGE EXCEPT) in the page cache the TEMP settings size.
    prepareDiffTransaction: async () => {},
    stageSnapshot: (runId) => sqliteSnapshotStage(h, db, runId),
    dropStagedSnapshot: (runId) => dropSqliteSnapshot(h, db, runId),
    importCohortMembers: (job) => importCohortMembersSqlite(h, db, job),
  };
  handles.set(engine, h);
  return engine;
}

/**
 * The raw better-sqlite3 handle behind a SQLite store, for what sits below the query builder on
 * purpose (query-plan guards in tests, a bench's checkpoint); undefined on PostgreSQL. Code of
 * the service goes through the engine's operations instead.
 */
export function sqliteHandleOf(store: { engine: Engine }): BetterSqlite3.Database | undefined {
  return handles.get(store.engine);
}
