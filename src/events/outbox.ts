import { type ExpressionBuilder, sql } from 'kysely';
import type { EventSettlement } from '../connectors/amplitude/send-events';
import { type Backoff, retryDelayMs } from '../errors';
import type { Context } from '../store';
import { type Heartbeat, keepRenewing } from '../store/leases';
import type { DB } from '../store/schema';
import { log } from '../telemetry/logger';

/**
 * The forwarder's side of the outbox (`stream_events`): claiming due events under a lease, and
 * settling each claimed event from what the send said. Every write after the claim is guarded on
 * the claim's token and `pending`, so an event whose lease lapsed and was taken by another
 * forwarder is never overwritten by this one.
 */

export interface OutboxLease {
  streamId: string;
  token: string;
  ms: number;
}

export interface ClaimedEvent {
  id: number;
  payload: string;
  attempts: number;
}

export interface ForwardTally {
  forwarded: number;
  deadLettered: number;
  requests: number;
}

/** Capped at minutes, not seconds: an outage of the destination is waited out without hammering it. */
export const FORWARD_BACKOFF: Backoff = { baseMs: 1_000, capMs: 5 * 60_000 };
const MAX_REASON = 1_000;

/**
 * Claims up to `limit` due events for the lease, oldest first. The due ids are picked once, in a
 * materialized CTE: as an `IN (subquery)` PostgreSQL may run the subquery again per row it
 * updates, and each run then skips the rows this very statement already leased and takes the
 * next ones, so the LIMIT stops limiting.
 */
export async function claimEvents(ctx: Context, lease: OutboxLease, limit: number): Promise<ClaimedEvent[]> {
  const { db, engine } = ctx.store;
  const now = Date.now();
  const free = (eb: ExpressionBuilder<DB, 'stream_events'>) =>
    eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]);
  let due = db
    .selectFrom('stream_events')
    .select('id')
    .where('stream_id', '=', lease.streamId)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where(free)
    .orderBy('id')
    .limit(limit);
  // Two workers on PostgreSQL skip each other's rows instead of queueing on their locks.
  if (engine.can.skipLockedClaims) due = due.forUpdate().skipLocked();
  const rows = await db
    .with(
      (cte) => cte('due').materialized(),
      () => due,
    )
    .updateTable('stream_events')
    .set({ lease_owner: lease.token, lease_until: now + lease.ms })
    .where('id', 'in', (eb) => eb.selectFrom('due').select('due.id'))
    // Re-checked under the row lock: a row claimed by someone else meanwhile is not taken.
    .where('status', '=', 'pending')
    .where(free)
    .returning(['id', 'payload', 'attempts'])
    .execute();
  return rows
    .map((r) => ({ id: Number(r.id), payload: r.payload, attempts: Number(r.attempts) }))
    .sort((x, y) => x.id - y.id);
}

/** Keeps the lease's events ours while the pass lives; a dead pass's events are free within a lease. */
export function renewEventLease(ctx: Context, lease: OutboxLease): Heartbeat {
  return keepRenewing(`forwarding ${lease.streamId}`, lease.ms, async () => {
    const { db, engine } = ctx.store;
    const renew = db.updateTable('stream_events').set({ lease_until: Date.now() + lease.ms });
    if (!engine.can.skipLockedClaims) {
      await renew.where('lease_owner', '=', lease.token).where('status', '=', 'pending').execute();
      return;
    }
    // Events a settle of this pass holds locked are being released: renewing them in another
    // order than the settle would deadlock the two.
    const owned = db
      .selectFrom('stream_events')
      .select('id')
      .where('lease_owner', '=', lease.token)
      .where('status', '=', 'pending')
      .forUpdate()
      .skipLocked();
    await renew.where('id', 'in', owned).execute();
  });
}

function guarded(ctx: Context, lease: OutboxLease, ids: number[]) {
  return ctx.store.db
    .updateTable('stream_events')
    .where('id', 'in', ids)
    .where('lease_owner', '=', lease.token)
    .where('status', '=', 'pending');
}

/** Gives claimed events that were not settled back at once (a stopped pass), ready for any forwarder. */
export async function releaseEvents(ctx: Context, lease: OutboxLease, events: ClaimedEvent[]): Promise<void> {
  if (events.length === 0) return;
  await guarded(
    ctx,
    lease,
    events.map((e) => e.id),
  )
    .set({ lease_owner: null, lease_until: null })
    .execute();
}

/**
 * The settle stage: writes each settlement onto its claimed event (`index` into `claimed`) and
 * counts forwarded and dead-lettered events into the tally. The only place a forwarding
 * outcome is written.
 */
export async function settleEvents(
  ctx: Context,
  lease: OutboxLease,
  claimed: ClaimedEvent[],
  settled: Array<{ index: number; settlement: EventSettlement }>,
  tally: ForwardTally,
): Promise<void> {
  const groups = new Map<string, { settlement: EventSettlement; events: ClaimedEvent[] }>();
  for (const { index, settlement } of settled) {
    const key = JSON.stringify(settlement);
    const g = groups.get(key) ?? { settlement, events: [] };
    g.events.push(claimed[index]!);
    groups.set(key, g);
  }
  for (const { settlement, events } of groups.values()) await settleGroup(ctx, lease, events, settlement, tally);
}

async function settleGroup(
  ctx: Context,
  lease: OutboxLease,
  events: ClaimedEvent[],
  s: EventSettlement,
  tally: ForwardTally,
): Promise<void> {
  const ids = events.map((e) => e.id);
  const free = { lease_owner: null, lease_until: null };
  switch (s.status) {
    case 'delivered':
      tally.forwarded += await markForwarded(ctx, lease, ids);
      return;
    case 'dead': {
      const reason = s.reason.slice(0, MAX_REASON);
      const r = await guarded(ctx, lease, ids)
        .set({ status: 'dead', reason, ...free })
        .executeTakeFirst();
      tally.deadLettered += Number(r.numUpdatedRows);
      return;
    }
    case 'held':
      // A throttle never spends an event's retry budget (DESIGN §3): only next_attempt_at moves.
      await guarded(ctx, lease, ids)
        .set({ next_attempt_at: s.retryAt, reason: s.reason.slice(0, MAX_REASON), ...free })
        .execute();
      return;
    case 'retry':
      await backOff(ctx, lease, events, s.reason);
      return;
  }
}

/** The stream's total moves in the same transaction: it stays exact while forwarded events are pruned. */
async function markForwarded(ctx: Context, lease: OutboxLease, ids: number[]): Promise<number> {
  return ctx.store.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('stream_events')
      .where('id', 'in', ids)
      .where('lease_owner', '=', lease.token)
      .where('status', '=', 'pending')
      .set({ status: 'forwarded', forwarded_at: Date.now(), lease_owner: null, lease_until: null, reason: null })
      .executeTakeFirst();
    const updated = Number(r.numUpdatedRows);
    if (updated > 0) {
      await trx
        .updateTable('streams')
        .set((eb) => ({ forwarded_total: eb('forwarded_total', '+', updated) }))
        .where('id', '=', lease.streamId)
        .execute();
    }
    return updated;
  });
}

/**
 * A transient failure never dead-letters: the events back off (capped) and keep retrying,
 * because a message event lost is worse than one late; the reason shows the last error.
 */
async function backOff(ctx: Context, lease: OutboxLease, events: ClaimedEvent[], reason: string): Promise<void> {
  const attempts = Math.max(...events.map((e) => e.attempts));
  await guarded(
    ctx,
    lease,
    events.map((e) => e.id),
  )
    .set((eb) => ({
      attempts: eb('attempts', '+', 1),
      next_attempt_at: Date.now() + retryDelayMs(FORWARD_BACKOFF, attempts + 1),
      lease_owner: null,
      lease_until: null,
      reason: reason.slice(0, MAX_REASON),
    }))
    .execute();
  log.warn({ stream: lease.streamId, err: reason }, 'sending events failed; backing off');
}

/** Pending events of the stream, and when the earliest becomes due (or its lease lapses). */
export async function outboxState(
  ctx: Context,
  streamId: string,
): Promise<{ pending: number; nextAttemptAt: number | null }> {
  const agg = await ctx.store.db
    .selectFrom('stream_events')
    .select((eb) => [
      eb.fn.countAll<number>().as('pending'),
      eb.fn
        .min(
          sql<number>`case when lease_until is not null and lease_until > next_attempt_at then lease_until else next_attempt_at end`,
        )
        .as('next'),
    ])
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  const pending = Number(agg.pending);
  return { pending, nextAttemptAt: pending > 0 && agg.next !== null ? Number(agg.next) : null };
}

/** Due events a full batch holds; fewer are held back while the oldest is younger than the linger. */
const LINGER_FULL_BATCH = 1_000;

/** When a partial batch should wait for more events: the time to re-run, else undefined. */
export async function lingerUntil(ctx: Context, streamId: string, lingerMs: number): Promise<number | undefined> {
  const now = Date.now();
  const due = await ctx.store.db
    .selectFrom('stream_events')
    .select(['received_at'])
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .orderBy('id')
    .limit(LINGER_FULL_BATCH)
    .execute();
  if (due.length === 0 || due.length >= LINGER_FULL_BATCH) return undefined;
  const oldest = Math.min(...due.map((d) => Number(d.received_at)));
  return oldest + lingerMs > now ? oldest + lingerMs : undefined;
}
