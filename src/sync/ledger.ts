import { type Kysely, sql } from 'kysely';
import type { Context } from '../store';
import type { DB } from '../store/schema';
import { enteredAt } from './diff';
import { recordWebhookChanges } from './run-record';

const BATCH = 500;

/**
 * A delta that starts a fresh delivery of its row: a changed wish, or a re-asserted one that last
 * ended not_found/failed; an unchanged one keeps its outcome and retry state.
 */
const RESTARTS = sql`ledger.desired <> excluded.desired OR (ledger.desired <> ledger.confirmed AND ledger.outcome IN ('not_found','failed'))`;

/**
 * Applies a membership delta (an Amplitude cohort webhook) to every active sync of the cohort:
 * sets `desired`, never `confirmed` (only OneSignal's answer does that, DESIGN §2).
 *
 * Ordering: a delta whose sourceTs is older than the row's source_ts changes nothing, so
 * duplicates and out-of-order deliveries are harmless; equal timestamps re-apply idempotently.
 * A newer delta that agrees with the row still advances source_ts, or a late, older delta of
 * the opposite sign would slip in afterwards. Rows are kept for users who leave before ever
 * being tagged (desired=0, confirmed=0) for the same reason: they carry the timestamp.
 */
export async function applyMembershipDelta(
  ctx: Context,
  /** `syncIds`: only these syncs of the cohort (those that map users the way `externalIds` were mapped). */
  delta: MembershipDelta,
): Promise<{ changed: number; destinationIds: string[] }> {
  const db = ctx.store.db;
  const ids = [...new Set(delta.externalIds.map((s) => String(s).trim()).filter((s) => s.length > 0))];
  if (delta.syncIds?.length === 0) return { changed: 0, destinationIds: [] };
  const syncs = await db
    .selectFrom('syncs')
    .select(['id', 'destination_id'])
    .where('cohort_id', '=', delta.cohortId)
    .where('status', '=', 'active')
    .$if(delta.syncIds !== undefined, (q) => q.where('id', 'in', delta.syncIds!))
    .execute();
  let changed = 0;
  const touched = new Set<string>();
  if (ids.length === 0 || syncs.length === 0) return { changed: 0, destinationIds: [] };
  await db.transaction().execute(async (trx) => {
    await lockSyncs(ctx, trx, syncs);
    for (const s of syncs) {
      const run: WebhookRun = { id: null };
      for (let i = 0; i < ids.length; i += BATCH) {
        const n = await applyBatch(trx, s, ids.slice(i, i + BATCH), delta, run);
        changed += n;
        if (n > 0) touched.add(s.destination_id);
      }
    }
  });
  return { changed, destinationIds: [...touched] };
}

/**
 * Appliers of one sync take turns (PostgreSQL; SQLite has one writer anyway): each counts the
 * rows its delta changes and finds or opens the sync's webhook run of the minute before it
 * writes, so two messages applied at once on two connections would otherwise both open a run,
 * or both count the same user. Locked in id order, so appliers of several syncs never deadlock.
 */
async function lockSyncs(ctx: Context, trx: Kysely<DB>, syncs: SyncRef[]): Promise<void> {
  if (!ctx.store.engine.can.rowLocks) return;
  await trx
    .selectFrom('syncs')
    .select('id')
    .where(
      'id',
      'in',
      syncs.map((s) => s.id),
    )
    .orderBy('id')
    .forUpdate()
    .execute();
}

export interface MembershipDelta {
  cohortId: string;
  inCohort: boolean;
  externalIds: string[];
  sourceTs: number;
  syncIds?: string[];
  /** The cohort-webhook message this delta is, named on the sync's webhook run. */
  messageId?: string;
}

type SyncRef = { id: string; destination_id: string };

/** The sync's webhook run this delta's changes belong to, once it has changes. */
type WebhookRun = { id: string | null };

/**
 * One batch of a delta on one sync's rows: how many rows it gives something to deliver. Real-time
 * changes are runs: the rows a delta changes belong to the sync's webhook run of the minute
 * (run-record.ts recordWebhookChanges), so they get records and counters like any run's.
 */
async function applyBatch(
  trx: Kysely<DB>,
  s: SyncRef,
  batch: string[],
  delta: MembershipDelta,
  run: WebhookRun,
): Promise<number> {
  // Counted from the rows as they are before the guarded upsert; the upsert's own WHERE is what
  // keeps concurrent appliers correct on PostgreSQL.
  const c = await countRestarts(trx, s.id, batch, delta);
  const n = c.added + c.removed + c.retried;
  if (n > 0) {
    const newMessage = run.id === null;
    run.id = await recordWebhookChanges(trx, s.id, {
      ...c,
      computedMs: delta.sourceTs,
      newMessage,
      ...(delta.messageId !== undefined ? { messageId: delta.messageId } : {}),
    });
  }
  await upsertWishes(trx, s, batch, delta, run.id);
  return n;
}

async function countRestarts(
  trx: Kysely<DB>,
  syncId: string,
  batch: string[],
  delta: MembershipDelta,
): Promise<{ added: number; removed: number; retried: number }> {
  const desired = delta.inCohort ? 1 : 0;
  const existing = await trx
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'confirmed', 'source_ts', 'outcome'])
    .where('sync_id', '=', syncId)
    .where('external_id', 'in', batch)
    .execute();
  const byId = new Map(existing.map((r) => [r.external_id, r]));
  const c = { added: 0, removed: 0, retried: 0 };
  for (const id of batch) {
    const r = byId.get(id);
    if (!r) {
      if (desired === 1) c.added++;
    } else if (Number(r.source_ts) <= delta.sourceTs) {
      if (Number(r.desired) !== desired) c[desired === 1 ? 'added' : 'removed']++;
      else if (r.desired !== r.confirmed && (r.outcome === 'not_found' || r.outcome === 'failed')) c.retried++;
    }
  }
  return c;
}

async function upsertWishes(
  trx: Kysely<DB>,
  s: SyncRef,
  batch: string[],
  delta: MembershipDelta,
  runId: string | null,
): Promise<void> {
  const now = Date.now();
  await trx
    .insertInto('ledger')
    .values(
      batch.map((external_id) => ({
        sync_id: s.id,
        destination_id: s.destination_id,
        external_id,
        desired: delta.inCohort ? 1 : 0,
        confirmed: 0,
        source_ts: delta.sourceTs,
        // A user who leaves before ever being tagged is no change of any run.
        run_id: delta.inCohort ? runId : null,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        lease_owner: null,
        lease_until: null,
        updated_at: now,
        entered_at: delta.inCohort ? delta.sourceTs : null,
      })),
    )
    .onConflict((oc) =>
      oc
        .columns(['sync_id', 'external_id'])
        .doUpdateSet({
          desired: sql`excluded.desired`,
          source_ts: sql`excluded.source_ts`,
          run_id: runId === null ? sql`ledger.run_id` : sql`CASE WHEN ${RESTARTS} THEN ${runId} ELSE ledger.run_id END`,
          // When the new wish equals what OneSignal already carries there is nothing to send.
          outcome: sql`CASE WHEN ${RESTARTS} THEN (CASE WHEN excluded.desired = ledger.confirmed THEN 'delivered' ELSE NULL END) ELSE ledger.outcome END`,
          error: sql`CASE WHEN ${RESTARTS} THEN NULL ELSE ledger.error END`,
          attempts: sql`CASE WHEN ${RESTARTS} THEN 0 ELSE ledger.attempts END`,
          next_attempt_at: sql`CASE WHEN ${RESTARTS} THEN NULL ELSE ledger.next_attempt_at END`,
          updated_at: sql`excluded.updated_at`,
          // A leaver keeps the time it entered (unused while it is not a member).
          entered_at: sql`CASE WHEN excluded.desired = 1 THEN ${enteredAt('ledger.desired')} ELSE ledger.entered_at END`,
        })
        .where(sql.ref('ledger.source_ts'), '<=', sql<number>`excluded.source_ts`),
    )
    .execute();
}
