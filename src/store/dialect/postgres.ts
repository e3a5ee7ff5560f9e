import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { DB } from '../schema';
import { importCohortMembersPg } from './cohort-members.postgres';
import { prepareDiffTransactionPg } from './diff-transaction.postgres';
import type { Engine } from './engine';
import { inboxMessageInserterPg } from './inbox-message.postgres';
import { claimLedgerRowsPg } from './ledger-claim.postgres';
import { writeLedgerOutcomesPg } from './ledger-outcomes.postgres';
import { insertRunRecordsPg } from './run-records.postgres';
import { dropPostgresSnapshot, postgresSnapshotStage } from './stage-snapshot.postgres';
import { streamEventsInserterPg } from './stream-events.postgres';

/** The scale-out database: a pool of connections, row locks with SKIP LOCKED, jobs in graphile-worker. */
export function postgresEngine(db: Kysely<DB>, pool: pg.Pool): Engine {
  return {
    name: 'postgres',
    can: { inPlaceSnapshot: false, skipLockedClaims: true, rowLocks: true, embeddedJobRunner: false },
    insertStreamEvents: streamEventsInserterPg(pool),
    insertInboxMessage: inboxMessageInserterPg(pool),
    writeLedgerOutcomes: writeLedgerOutcomesPg,
    claimLedgerRows: claimLedgerRowsPg,
    insertRunRecords: insertRunRecordsPg,
    prepareDiffTransaction: prepareDiffTransactionPg,
    stageSnapshot: (runId) => postgresSnapshotStage(db, runId),
    dropStagedSnapshot: (runId) => dropPostgresSnapshot(db, runId),
    importCohortMembers: (job) => importCohortMembersPg(db, job),
  };
}
