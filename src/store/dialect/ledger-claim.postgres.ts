import { type Kysely, sql } from 'kysely';
import type { DB } from '../schema';
import { type ClaimedLedgerRow, type LedgerClaim, ledgerDue } from './engine';

/**
 * Two statements in one transaction. The first picks the first users with due rows (how many
 * due rows each has, and where they are) and locks those rows with SKIP LOCKED, so a concurrent
 * claimer's rows are passed over instead of waited for; it answers both lists. Only users all of
 * whose due rows it locked are leased by the second: a user half-taken by another claimer waits
 * for the next claim, so one request still carries all of a user's changes. Locks of rows not
 * leased end with the transaction.
 *
 * Rows are found again by their physical address (ctid), a TID scan whatever the planner
 * believes of the ledger, and the whole-user test is done here rather than by joining the two
 * lists in SQL: joined by key, a ledger of tens of thousands of rows was read whole three times
 * per claim, and joining the lists, whose sizes an unanalysed ledger makes the planner guess as 1,
 * became a nested loop of a million comparisons. The lease runs in a new snapshot, so a row a
 * concurrent writer changed between the pick and the lock is leased in the version locked.
 */
export async function claimLedgerRowsPg(db: Kysely<DB>, c: LedgerClaim): Promise<ClaimedLedgerRow[]> {
  return db.transaction().execute(async (trx) => {
    const picked = await sql<{ external_id: string; n: number | null; tid: string | null }>`
      WITH due AS MATERIALIZED (
        SELECT external_id, count(*)::int AS n, array_agg(ctid) AS tids FROM ledger
        WHERE destination_id = ${c.destinationId} AND ${ledgerDue(c.nowMs)}
        GROUP BY external_id ORDER BY external_id LIMIT ${c.users}
      ), locked AS MATERIALIZED (
        SELECT ctid AS tid, external_id FROM ledger
        WHERE ctid = ANY (ARRAY(SELECT unnest(tids) FROM due)) AND destination_id = ${c.destinationId}
          AND ${ledgerDue(c.nowMs)}
        FOR UPDATE SKIP LOCKED
      )
      SELECT external_id, n, NULL::text AS tid FROM due
      UNION ALL SELECT external_id, NULL, tid::text FROM locked`.execute(trx);
    const tids = wholeUsersRows(picked.rows);
    if (tids.length === 0) return [];
    const leased = await sql<ClaimedLedgerRow>`
      UPDATE ledger SET lease_owner = ${c.workerId}, lease_until = ${c.leaseUntil}
      WHERE ctid = ANY (${tids}::tid[])
      RETURNING sync_id, external_id, desired, attempts, run_id, entered_at`.execute(trx);
    return leased.rows;
  });
}

/** The locked rows of users whose every due row was locked. */
function wholeUsersRows(picked: Array<{ external_id: string; n: number | null; tid: string | null }>): string[] {
  const due = new Map<string, number>();
  const locked = new Map<string, string[]>();
  for (const p of picked) {
    if (p.tid === null) due.set(p.external_id, Number(p.n));
    else {
      const list = locked.get(p.external_id);
      if (list) list.push(p.tid);
      else locked.set(p.external_id, [p.tid]);
    }
  }
  const out: string[] = [];
  for (const [user, rows] of locked) if (rows.length === due.get(user)) out.push(...rows);
  return out;
}
