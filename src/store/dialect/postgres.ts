import type pg from 'pg';
import type { Engine } from './engine';
import { inboxMessageInserterPg } from './inbox-message.postgres';
import { writeLedgerOutcomesPg } from './ledger-outcomes.postgres';
import { streamEventsInserterPg } from './stream-events.postgres';

/** The scale-out database: a pool of connections, row locks with SKIP LOCKED, jobs in graphile-worker. */
export function postgresEngine(pool: pg.Pool): Engine {
  return {
    name: 'postgres',
    can: { inPlaceSnapshot: false, skipLockedClaims: true, embeddedJobRunner: false },
    insertStreamEvents: streamEventsInserterPg(pool),
    insertInboxMessage: inboxMessageInserterPg(pool),
    writeLedgerOutcomes: writeLedgerOutcomesPg,
  };
}
