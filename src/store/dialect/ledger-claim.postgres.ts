import { type Kysely, sql } from 'kysely';
import type { DB } from '../schema';
import { type ClaimedLedgerRow, type LedgerClaim, ledgerDue } from './engine';

/**
 * One statement, one round trip. The first users with due rows are picked, their due rows locked
 * with SKIP LOCKED (a concurrent claimer's rows are passed over instead of waited for), and only
 * users all of whose due rows were locked here are leased: a user half-taken by another claimer
 * waits for the next claim, so one request still carries all of a user's changes. Locks of rows
 * not leased end with the statement.
 */
export async function claimLedgerRowsPg(db: Kysely<DB>, c: LedgerClaim): Promise<ClaimedLedgerRow[]> {
  const r = await sql<ClaimedLedgerRow>`
    WITH due AS MATERIALIZED (
      SELECT DISTINCT external_id FROM ledger WHERE destination_id = ${c.destinationId} AND ${ledgerDue(c.nowMs)}
      ORDER BY external_id LIMIT ${c.users}
    ), locked AS MATERIALIZED (
      SELECT sync_id, external_id FROM ledger
      WHERE destination_id = ${c.destinationId} AND external_id IN (SELECT external_id FROM due) AND ${ledgerDue(c.nowMs)}
      FOR UPDATE SKIP LOCKED
    ), split AS (
      SELECT o.external_id FROM ledger o
      WHERE o.destination_id = ${c.destinationId} AND o.external_id IN (SELECT external_id FROM due)
        AND ${ledgerDue(c.nowMs, 'o')}
        AND NOT EXISTS (SELECT 1 FROM locked k WHERE k.sync_id = o.sync_id AND k.external_id = o.external_id)
    )
    UPDATE ledger l SET lease_owner = ${c.workerId}, lease_until = ${c.leaseUntil}
    FROM locked k
    WHERE l.sync_id = k.sync_id AND l.external_id = k.external_id
      AND k.external_id NOT IN (SELECT external_id FROM split)
    RETURNING l.sync_id, l.external_id, l.desired, l.attempts, l.run_id, l.entered_at`.execute(db);
  return r.rows;
}
