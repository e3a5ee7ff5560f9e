import { sql } from 'kysely';
import type { Context, LedgerOutcome } from '../store';
import { LEASE_MS } from '../store/leases';
import { appendRecords, type RecordRow } from './records';
import { addDeliveryCounts, type DeliveryCounts } from './run-record';

/**
 * The ledger as delivery's work queue: the claim and settle stages of delivery (DESIGN §2),
 * and the only writer of delivery outcomes. A pass claims a chunk of users' pending rows with a
 * lease, renews the lease while it lives, settles each answer (which releases the row) and
 * releases what it did not settle.
 */

/** One pending ledger row a pass holds a lease on. */
export interface ClaimedRow {
  sync_id: string;
  external_id: string;
  desired: number;
  attempts: number;
  /** The run whose change this is (null: a change no run recorded). */
  run_id?: string | null;
  /** When the user entered the cohort (epoch ms), for entry-time tag values. */
  entered_at?: number | null;
}

/** A settled answer as delivery knows it: the ledger outcome, the run it is for, the vendor's status. */
export interface DeliveryOutcome extends LedgerOutcome {
  runId: string | null;
  /** The vendor's HTTP status, when an answer came. */
  status: number | null;
}

/** One user's claimed rows (every sync of the destination) and how many of its cohort tags OneSignal carries. */
export interface ClaimedUser {
  externalId: string;
  rows: ClaimedRow[];
  confirmedTags: number;
}

/** Who holds the claimed rows: one delivery pass on one destination. */
export interface DeliveryLease {
  destinationId: string;
  workerId: string;
}

/**
 * Claims the due rows of up to `users` users, every row of a user in the same claim (so one
 * request carries all of a user's changes), grouped per user in external-id order.
 */
export async function claimUsers(ctx: Context, lease: DeliveryLease, users: number): Promise<ClaimedUser[]> {
  const rows = await claimRows(ctx, lease, users);
  if (rows.length === 0) return [];
  const byUser = new Map<string, ClaimedRow[]>();
  for (const r of rows) {
    const list = byUser.get(r.external_id);
    if (list) list.push(r);
    else byUser.set(r.external_id, [r]);
  }
  const counts = await confirmedTagCounts(ctx, lease.destinationId, [...byUser.keys()]);
  return [...byUser].map(([externalId, list]) => ({
    externalId,
    rows: list,
    confirmedTags: counts.get(externalId) ?? 0,
  }));
}

async function claimRows(ctx: Context, lease: DeliveryLease, users: number): Promise<ClaimedRow[]> {
  const now = Date.now();
  const claimed = await ctx.store.engine.claimLedgerRows(ctx.store.db, {
    destinationId: lease.destinationId,
    workerId: lease.workerId,
    users,
    nowMs: now,
    leaseUntil: now + LEASE_MS,
  });
  return claimed
    .map((r) => ({
      ...r,
      desired: Number(r.desired),
      attempts: Number(r.attempts),
      entered_at: r.entered_at === null || r.entered_at === undefined ? null : Number(r.entered_at),
    }))
    .sort((a, b) => (a.external_id < b.external_id ? -1 : a.external_id > b.external_id ? 1 : 0));
}

async function confirmedTagCounts(ctx: Context, destinationId: string, users: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  // By primary key (sync, user) over the destination's syncs: the ledger has no index that
  // starts with the destination, and a full scan per claimed chunk stalls big ledgers.
  const rows = await ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('sync_id', 'in', (eb) => eb.selectFrom('syncs').select('id').where('destination_id', '=', destinationId))
    .where('external_id', 'in', users)
    .where('confirmed', '=', 1)
    .groupBy('external_id')
    .execute();
  for (const r of rows) out.set(r.external_id, Number(r.n));
  return out;
}

/** Extends the leases this pass holds on the destination's rows (found by owner: migration 008). */
export async function renewLeases(ctx: Context, lease: DeliveryLease): Promise<void> {
  const { db, engine } = ctx.store;
  const renew = db.updateTable('ledger').set({ lease_until: Date.now() + LEASE_MS });
  if (!engine.can.skipLockedClaims) {
    await renew.where('lease_owner', '=', lease.workerId).where('destination_id', '=', lease.destinationId).execute();
    return;
  }
  // Rows an outcome write of this very pass holds locked are being released, not renewed: taking
  // them in another order than that write deadlocked the two (PostgreSQL aborts one of them).
  const owned = db
    .selectFrom('ledger')
    .select(['sync_id', 'external_id'])
    .where('lease_owner', '=', lease.workerId)
    .where('destination_id', '=', lease.destinationId)
    .forUpdate()
    .skipLocked();
  await renew
    .where((eb) => eb(eb.refTuple('sync_id', 'external_id'), 'in', owned.$asTuple('sync_id', 'external_id')))
    .execute();
}

/**
 * Frees the rows of a destination leased by these owners (a pass's own at its end, or a dead
 * worker's). Leases sit on claimed rows, which are pending, so the pending-rows index finds them.
 * A row another writer settled meanwhile keeps an inert lease (it is not claimable work);
 * spelling `desired <> confirmed` is what lets SQLite use the partial index instead of scanning
 * the whole ledger.
 */
export async function releaseLeases(ctx: Context, destinationId: string, owners: string[]): Promise<void> {
  await ctx.store.db
    .updateTable('ledger')
    .set({ lease_owner: null, lease_until: null })
    .where('destination_id', '=', destinationId)
    .whereRef('desired', '<>', 'confirmed')
    .where('lease_owner', 'in', owners)
    .execute();
}

/**
 * The settle stage: records answers on the rows this pass leased and releases them. `confirmed`
 * takes what OneSignal now carries; an answer to a wish that changed in flight leaves the row
 * pending (the engine's writeLedgerOutcomes). Whatever must commit with the outcomes joins them
 * here, in one transaction: the run record of every answer that settled its row (records.ts;
 * an answer to an older wish settles nothing and leaves none), and per run the requests sent
 * for it and its not_found/failed counts (run-record.ts), so the history never disagrees with
 * the ledger, even after a crash, whichever process delivered.
 */
export async function settleOutcomes(
  ctx: Context,
  lease: DeliveryLease,
  outcomes: DeliveryOutcome[],
  requests: Map<string, number> = new Map(),
): Promise<void> {
  if (outcomes.length === 0 && requests.size === 0) return;
  const now = Date.now();
  await ctx.store.db.transaction().execute(async (trx) => {
    const settled = await ctx.store.engine.writeLedgerOutcomes(trx, lease.workerId, outcomes, now);
    const recorded = settled.flatMap(({ outcome, runId }) =>
      outcome.outcome === 'retry' || runId === null ? [] : [{ o: outcome, runId }],
    );
    await appendRecords(trx, ctx.store, recorded.map(recordOf(now)));
    await addDeliveryCounts(trx, deliveryCounts(recorded, requests));
  });
}

function recordOf(now: number) {
  return ({ o, runId }: { o: DeliveryOutcome; runId: string }): RecordRow => ({
    runId,
    externalId: o.externalId,
    operation: o.sent === 1 ? 'add' : 'remove',
    outcome: o.outcome as RecordRow['outcome'],
    status: o.status,
    attempts: o.attempts,
    message: o.error,
    atMs: now,
  });
}

/** Per run: the requests charged to it and its records that settled not_found or failed. */
function deliveryCounts(
  settled: Array<{ o: DeliveryOutcome; runId: string }>,
  requests: Map<string, number>,
): DeliveryCounts {
  const out: DeliveryCounts = new Map();
  const of = (id: string) => {
    const c = out.get(id) ?? { requests: 0, notFound: 0, failed: 0 };
    out.set(id, c);
    return c;
  };
  for (const [id, n] of requests) of(id).requests += n;
  for (const { o, runId } of settled) {
    if (o.outcome === 'not_found') of(runId).notFound++;
    else if (o.outcome === 'failed') of(runId).failed++;
  }
  return out;
}

/** When the earliest retryable pending row of a destination is due or its lease lapses (null: none). */
export async function nextRetryAt(ctx: Context, destinationId: string): Promise<number | null> {
  const r = await sql<{ t: number | null }>`
    SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > COALESCE(next_attempt_at, 0) THEN lease_until ELSE COALESCE(next_attempt_at, 0) END) AS t
    FROM ledger WHERE destination_id = ${destinationId} AND desired <> confirmed
      AND (outcome IS NULL OR outcome = 'retry')`.execute(ctx.store.db);
  const t = r.rows[0]?.t;
  return t === null || t === undefined ? null : Number(t);
}

export async function countPending(ctx: Context, destinationId: string): Promise<number> {
  const r = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM ledger WHERE destination_id = ${destinationId} AND desired <> confirmed
      AND (outcome IS NULL OR outcome = 'retry')`.execute(ctx.store.db);
  return Number(r.rows[0]?.n ?? 0);
}
