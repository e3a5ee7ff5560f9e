import { type Kysely, sql } from 'kysely';
import type { DB } from '../schema';
import { type ClaimedLedgerRow, type LedgerClaim, ledgerDue } from './engine';

/**
 * Two statements: the users, then their due rows. SQLite has one writer, so nothing can claim a
 * row between them; the due condition on the UPDATE still keeps the claim exact.
 */
export async function claimLedgerRowsSqlite(db: Kysely<DB>, c: LedgerClaim): Promise<ClaimedLedgerRow[]> {
  const due = await sql<{ external_id: string }>`
    SELECT DISTINCT external_id FROM ledger WHERE destination_id = ${c.destinationId} AND ${ledgerDue(c.nowMs)}
    ORDER BY external_id LIMIT ${c.users}`.execute(db);
  if (due.rows.length === 0) return [];
  const ids = due.rows.map((r) => r.external_id);
  const claimed = await sql<ClaimedLedgerRow>`
    UPDATE ledger SET lease_owner = ${c.workerId}, lease_until = ${c.leaseUntil}
    WHERE destination_id = ${c.destinationId} AND external_id IN (${sql.join(ids)}) AND ${ledgerDue(c.nowMs)}
    RETURNING sync_id, external_id, desired, attempts, run_id, entered_at`.execute(db);
  return claimed.rows;
}
