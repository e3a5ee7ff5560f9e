import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { DB } from '../schema';
import type { Engine } from './engine';
import { insertInboxMessageQb } from './inbox-message.postgres';
import { writeLedgerOutcomesPg } from './ledger-outcomes.postgres';

/** The scale-out database: a pool of connections, row locks with SKIP LOCKED, jobs in graphile-worker. */
export function postgresEngine(db: Kysely<DB>, _pool: pg.Pool): Engine {
  return {
    name: 'postgres',
    can: { inPlaceSnapshot: false, skipLockedClaims: true, embeddedJobRunner: false },
    insertInboxMessage: (values) => insertInboxMessageQb(db, values),
    writeLedgerOutcomes: writeLedgerOutcomesPg,
  };
}
