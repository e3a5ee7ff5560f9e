import { type Kysely, sql } from 'kysely';
import type { Context } from '../store';
import type { DB } from '../store/schema';
import { type SnapshotRef, stagedIds } from './staging';

/**
 * The snapshot diff, as set algebra in SQL between the run's snapshot (a TEMP table or a file
 * cohort's members on SQLite, `staging` rows otherwise: see staging.ts) and the ledger
 * (DESIGN §2). Never materialised in JS: every statement below is one pass over an index, so a
 * million-member snapshot costs a few index scans.
 *
 * An add is a member whose ledger row is absent, not desired, or desired but last ended
 * not_found/failed (re-asserting it is the reconcile retry). A remove is a desired row (or an
 * undesired one whose removal ended not_found/failed) missing from the snapshot. A row whose
 * source_ts is newer than the snapshot's (a later webhook delta) is left alone.
 */

/** `runId`, and where the run's snapshot is (see staging.ts; default 'staging'). */
export interface DiffParams extends SnapshotRef {
  syncId: string;
  destinationId: string;
  sourceTs: number;
}

export interface DiffCounts {
  adds: number;
  removes: number;
}

const RETRY_OUTCOMES = sql`('not_found','failed')`;

/** A ledger column, qualified by `alias` when the statement needs it. */
function col(alias: string | undefined, name: string) {
  return sql.ref(alias ? `${alias}.${name}` : name);
}

/**
 * The ledger rows a snapshot member changes into a desired one: not newer than the snapshot (a
 * later webhook delta wins), and not desired already, unless its add last ended not_found or
 * failed (re-asserting it is the reconcile retry). COALESCE keeps a NULL outcome out of
 * three-valued logic, where NOT(NULL) would drop the row.
 */
function addable(p: DiffParams, alias?: string) {
  const c = (name: string) => col(alias, name);
  return sql`${c('source_ts')} <= ${p.sourceTs} AND (${c('desired')} = 0
    OR (${c('confirmed')} = 0 AND COALESCE(${c('outcome')}, '') IN ${RETRY_OUTCOMES}))`;
}

/** The ledger rows a snapshot's absence removes: desired (or a removal to retry), not newer than it. */
function removable(p: DiffParams) {
  return sql`sync_id = ${p.syncId} AND source_ts <= ${p.sourceTs}
    AND (desired = 1 OR (confirmed = 1 AND COALESCE(outcome, '') IN ${RETRY_OUTCOMES}))`;
}

/** Members of the snapshot that are adds: no ledger row yet, or an addable one. */
function addsFromSnapshot(p: DiffParams) {
  return sql`FROM (${stagedIds(p)}) s
    LEFT JOIN ledger l ON l.sync_id = ${p.syncId} AND l.external_id = s.external_id
    WHERE (l.external_id IS NULL OR (${addable(p, 'l')}))`;
}

/** Rows the snapshot removes: removable ones whose user is not in it. */
function removesFromLedger(p: DiffParams) {
  return sql`FROM ledger l WHERE ${removable(p)}
    AND NOT EXISTS (SELECT 1 FROM (${stagedIds(p)}) s WHERE s.external_id = l.external_id)`;
}

/** Runs `fn` in one transaction readied by the database for a whole snapshot's set operations. */
export function diffTransaction<T>(ctx: Context, fn: (trx: Kysely<DB>) => Promise<T>): Promise<T> {
  return ctx.store.db.transaction().execute(async (trx) => {
    await ctx.store.engine.prepareDiffTransaction(trx);
    return fn(trx);
  });
}

/** Counts without writing (dry runs, held runs). */
export async function countDiff(db: Kysely<DB>, p: DiffParams): Promise<DiffCounts> {
  const adds = await sql<{ n: number }>`SELECT COUNT(*) AS n ${addsFromSnapshot(p)}`.execute(db);
  const removes = await sql<{ n: number }>`SELECT COUNT(*) AS n ${removesFromLedger(p)}`.execute(db);
  return { adds: Number(adds.rows[0]?.n ?? 0), removes: Number(removes.rows[0]?.n ?? 0) };
}

/** Samples for dry runs and held runs (first N ids of each kind, in id order). */
export async function sampleDiff(
  db: Kysely<DB>,
  p: DiffParams,
  limit = 10,
): Promise<{ adds: string[]; removes: string[] }> {
  const adds = await sql<{ external_id: string }>`
    SELECT s.external_id ${addsFromSnapshot(p)} ORDER BY s.external_id LIMIT ${limit}`.execute(db);
  const removes = await sql<{ external_id: string }>`
    SELECT l.external_id ${removesFromLedger(p)} ORDER BY l.external_id LIMIT ${limit}`.execute(db);
  return { adds: adds.rows.map((r) => r.external_id), removes: removes.rows.map((r) => r.external_id) };
}

/**
 * Writes the diff into the ledger inside `trx` (the caller's transaction): one upsert for
 * adds, one guarded UPDATE for removes. Returns the rows actually changed, which are the
 * run's authoritative added/removed counters. Rows get run_id = this run, outcome = null,
 * attempts = 0, so delivery picks them up and the run's counters are read from them.
 */
export async function applyDiff(trx: Kysely<DB>, p: DiffParams, now = Date.now()): Promise<DiffCounts> {
  // Both sets are computed with EXCEPT over two primary-key ranges that are already sorted by
  // external_id, which SQLite plans as MERGE (EXCEPT): one sequential walk of each side, where a
  // NOT IN / NOT EXISTS probe would cost an index lookup per row, and a combined UNION ALL …
  // GROUP BY pass an aggregate per row; PostgreSQL hashes or sorts them.
  const removes = await sql`
    UPDATE ledger SET desired = 0, source_ts = ${p.sourceTs}, run_id = ${p.runId}, outcome = ${settledOutcome(0)}, error = NULL,
      attempts = 0, next_attempt_at = NULL, updated_at = ${now}
    WHERE sync_id = ${p.syncId} AND external_id IN (
      SELECT external_id FROM ledger WHERE ${removable(p)}
      EXCEPT ${stagedIds(p)})`.execute(trx);
  // Adds: members except the rows that must not change. The WHERE in the outer SELECT also
  // resolves SQLite's parsing ambiguity of INSERT … SELECT … ON CONFLICT; the conflict clause
  // re-checks the same condition so a concurrent writer on PostgreSQL cannot make us clobber a
  // newer row.
  const adds = await sql`
    INSERT INTO ledger (sync_id, destination_id, external_id, desired, confirmed, source_ts, run_id, outcome, error,
      attempts, next_attempt_at, lease_owner, lease_until, updated_at, entered_at)
    SELECT ${p.syncId}, ${p.destinationId}, a.external_id, 1, 0, ${p.sourceTs}, ${p.runId}, NULL, NULL, 0, NULL, NULL, NULL, ${now}, ${p.sourceTs}
    FROM (
      ${stagedIds(p)}
      EXCEPT SELECT external_id FROM ledger WHERE sync_id = ${p.syncId} AND NOT (${addable(p)})
    ) AS a WHERE 1 = 1
    ON CONFLICT (sync_id, external_id) DO UPDATE SET desired = 1, source_ts = excluded.source_ts, run_id = excluded.run_id,
      outcome = ${settledOutcome(1)}, error = NULL, attempts = 0, next_attempt_at = NULL, updated_at = excluded.updated_at,
      entered_at = ${enteredAt('ledger.desired')}
    WHERE ${addable(p, 'ledger')}`.execute(trx);
  return { adds: Number(adds.numAffectedRows ?? 0), removes: Number(removes.numAffectedRows ?? 0) };
}

/**
 * When a row's user entered the cohort, as a member is written: a user who was not a member enters
 * at the membership's source time (re-entering sets a new time); a member re-asserted (a retried
 * add) keeps the time it entered.
 */
export function enteredAt(previousDesired: string) {
  return sql`CASE WHEN ${sql.ref(previousDesired)} = 0 THEN excluded.entered_at ELSE ledger.entered_at END`;
}

/**
 * Outcome of a row whose `desired` becomes `v`: nothing to send when OneSignal already matches
 * (e.g. removing a user who never got the tag because OneSignal does not know them: that stays
 * not_found; an add whose removal was never delivered: delivered), else NULL = pending.
 */
function settledOutcome(v: 0 | 1) {
  return sql`CASE WHEN ledger.confirmed = ${sql.lit(v)} THEN (CASE WHEN ledger.outcome = 'not_found' THEN 'not_found' ELSE 'delivered' END) ELSE NULL END`;
}

/**
 * Members of the sync that OneSignal currently carries (the guard's denominator), counted up to
 * `atMost` when given: the guard only needs to know whether there are enough of them, and
 * counting all of a 1M-member sync walks the whole ledger range (~100 ms) on every run.
 */
export async function countConfirmed(db: Kysely<DB>, syncId: string, atMost?: number): Promise<number> {
  const limit = atMost === undefined ? sql`` : sql`LIMIT ${atMost}`;
  const r = await sql<{
    n: number;
  }>`SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM ledger WHERE sync_id = ${syncId} AND confirmed = 1 ${limit}) AS c`.execute(
    db,
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Confirmed members the ledger is about to untag (desired 0, confirmed 1): what the guard weighs.
 * A left user OneSignal never confirmed (not found, never delivered) had no tag to lose.
 */
export async function countConfirmedRemovals(db: Kysely<DB>, syncId: string): Promise<number> {
  const r = await sql<{
    n: number;
  }>`SELECT COUNT(*) AS n FROM ledger WHERE sync_id = ${syncId} AND confirmed = 1 AND desired = 0`.execute(db);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Of the changes the diff makes, those that re-assert an earlier not_found/failed change (the
 * reconcile retry): adds of members whose add ended so, removes of non-members whose removal did.
 * The run counts them as `retried`, apart from users who joined or left. Read before the diff is
 * applied (applying resets the outcomes), in the same transaction.
 */
export async function countRetries(db: Kysely<DB>, p: DiffParams): Promise<{ adds: number; removes: number }> {
  const r = await sql<{ adds: number | null; removes: number | null }>`
    SELECT SUM(CASE WHEN l.desired = 1 THEN 1 ELSE 0 END) AS adds, SUM(CASE WHEN l.desired = 0 THEN 1 ELSE 0 END) AS removes
    FROM ledger l
    WHERE l.sync_id = ${p.syncId} AND l.source_ts <= ${p.sourceTs} AND COALESCE(l.outcome, '') IN ${RETRY_OUTCOMES}
      AND ((l.desired = 1 AND l.confirmed = 0 AND EXISTS (SELECT 1 FROM (${stagedIds(p)}) s WHERE s.external_id = l.external_id))
        OR (l.desired = 0 AND l.confirmed = 1 AND NOT EXISTS (SELECT 1 FROM (${stagedIds(p)}) s WHERE s.external_id = l.external_id)))`.execute(
    db,
  );
  return { adds: Number(r.rows[0]?.adds ?? 0), removes: Number(r.rows[0]?.removes ?? 0) };
}
