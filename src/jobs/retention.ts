import { sql } from 'kysely';
import { z } from 'zod';
import { AmpError } from '../errors';
import type { Context } from '../store';
import { pruneRunRecords } from '../sync/records';

/**
 * What the scheduler tick lets go of, so the database does not grow for ever: forwarded events
 * (each keeps its mapped payload, ~1 kB), applied cohort-webhook messages (up to ~100 kB each)
 * and the ledger rows of users who left a cohort and no longer carry its tag, older than the
 * retention period (a user who comes back gets a new row, as on the first sync). Pending events, dead letters and messages that failed to apply
 * stay until someone acts on them. The default, 7 days, is Amplitude's insert_id dedupe window
 * (reference amplitude-api.md §5): within it a retried OneSignal delivery is still caught here by
 * its event id; OneSignal's own retries end within hours. Stream totals do not move: the forwarder
 * keeps `streams.forwarded_total` as it forwards.
 */
export const DEFAULT_RETENTION_DAYS = 7;
/**
 * Run records (one row per user a run changed) are kept longer than the traffic above: Amplitude
 * keeps 14 days of a cohort sync's users, Hightouch and Census 14 days of row results. Run
 * counters are kept for ever.
 */
export const DEFAULT_RECORD_RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;
/** Rows deleted per statement, and at most per tick: a backlog drains over a few minutes. */
const CHUNK = 5_000;
const MAX_PER_TICK = 100_000;

const retentionDays = z.coerce
  .number({ message: 'must be a number of days' })
  .positive('must be more than 0 days')
  .max(3650, 'must be at most 3650 days');

function daysSetting(name: string, raw: string | undefined, defaultDays: number): number {
  if (raw === undefined || raw.trim() === '') return defaultDays * DAY_MS;
  const r = retentionDays.safeParse(raw);
  if (!r.success)
    throw new AmpError('invalid_input', `${name} ${r.error.issues[0]?.message ?? 'is invalid'} (got "${raw}")`);
  return r.data * DAY_MS;
}

/** The retention period in ms, from AMPSIGNAL_RETENTION_DAYS (default 7). */
export function retentionMs(raw: string | undefined = process.env.AMPSIGNAL_RETENTION_DAYS): number {
  return daysSetting('AMPSIGNAL_RETENTION_DAYS', raw, DEFAULT_RETENTION_DAYS);
}

/** How long run records are kept, in ms, from AMPSIGNAL_RECORD_RETENTION_DAYS (default 30). */
export function recordRetentionMs(raw: string | undefined = process.env.AMPSIGNAL_RECORD_RETENTION_DAYS): number {
  return daysSetting('AMPSIGNAL_RECORD_RETENTION_DAYS', raw, DEFAULT_RECORD_RETENTION_DAYS);
}

export interface PruneResult {
  events: number;
  webhooks: number;
  ledger: number;
  records: number;
}

export async function pruneExpired(
  ctx: Context,
  opts: { now?: number; keepMs?: number; keepRecordsMs?: number } = {},
): Promise<PruneResult> {
  const now = opts.now ?? Date.now();
  const cutoff = now - (opts.keepMs ?? retentionMs());
  return {
    events: await pruneForwardedEvents(ctx, cutoff),
    webhooks: await pruneAppliedWebhooks(ctx, cutoff),
    ledger: await pruneLeftMembers(ctx, cutoff),
    records: await pruneRunRecords(ctx.store.db, now - (opts.keepRecordsMs ?? recordRetentionMs()), MAX_PER_TICK),
  };
}

/**
 * The highest id whose message was received before `cutoff`, found by binary search over the
 * primary key: ids grow with arrival time, and the inbox has (and should pay for) no index on
 * received_at. A few dozen key lookups instead of a scan of every recent message.
 */
async function lastInboxIdBefore(ctx: Context, cutoff: number): Promise<number | null> {
  const t = sql.table('webhook_inbox');
  const at = async (minId: number, dir: 'asc' | 'desc' = 'asc') => {
    const r = await sql<{ id: number; received_at: number }>`
      SELECT id, received_at FROM ${t} WHERE id >= ${minId} ORDER BY id ${sql.raw(dir)} LIMIT 1`.execute(ctx.store.db);
    const row = r.rows[0];
    return row ? { id: Number(row.id), receivedAt: Number(row.received_at) } : undefined;
  };
  const first = await at(0);
  if (!first || first.receivedAt >= cutoff) return null;
  const last = (await at(0, 'desc'))!;
  if (last.receivedAt < cutoff) return last.id;
  let lo = first.id; // received before the cutoff
  let hi = last.id; // received at or after it (or no row at all)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const row = (await at(mid))!;
    if (row.receivedAt < cutoff) lo = row.id;
    else hi = mid;
  }
  return lo;
}

/** Runs one chunked DELETE until a chunk comes back short or `room` rows are gone; returns the count. */
async function deleteInChunks(room: number, chunk: () => Promise<{ numDeletedRows: bigint }>): Promise<number> {
  let total = 0;
  while (total < room) {
    const n = Number((await chunk()).numDeletedRows);
    total += n;
    if (n < CHUNK) break;
  }
  return total;
}

/** Forwarded before the cutoff (so received before it too), per stream, by the forwarded-by-time index. */
async function pruneForwardedEvents(ctx: Context, cutoff: number): Promise<number> {
  const db = ctx.store.db;
  let total = 0;
  for (const { id: streamId } of await db.selectFrom('streams').select('id').execute()) {
    total += await deleteInChunks(MAX_PER_TICK - total, () =>
      db
        .deleteFrom('stream_events')
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('stream_events')
            .select('id')
            .where('stream_id', '=', streamId)
            .where('status', '=', 'forwarded')
            .where('forwarded_at', '<', cutoff)
            .limit(CHUNK),
        )
        .executeTakeFirstOrThrow(),
    );
  }
  return total;
}

async function pruneAppliedWebhooks(ctx: Context, cutoff: number): Promise<number> {
  const upTo = await lastInboxIdBefore(ctx, cutoff);
  if (upTo === null) return 0;
  return deleteInChunks(MAX_PER_TICK, () =>
    ctx.store.db
      .deleteFrom('webhook_inbox')
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('webhook_inbox')
          .select('id')
          .where('id', '<=', upTo)
          .where('applied_at', 'is not', null)
          .where('error', 'is', null)
          .limit(CHUNK),
      )
      .executeTakeFirstOrThrow(),
  );
}

/**
 * Rows of users who left (desired = confirmed = 0, the removal settled) untouched since the
 * cutoff, through the partial index of such rows. Their run's record list loses them, as it loses
 * nothing else a run reports: the run keeps its counters.
 */
async function pruneLeftMembers(ctx: Context, cutoff: number): Promise<number> {
  const db = ctx.store.db;
  let total = 0;
  for (const { id: syncId } of await db.selectFrom('syncs').select('id').execute()) {
    total += await deleteInChunks(MAX_PER_TICK - total, () =>
      db
        .deleteFrom('ledger')
        .where('sync_id', '=', syncId)
        .where('external_id', 'in', (eb) =>
          eb
            .selectFrom('ledger')
            .select('external_id')
            .where('sync_id', '=', syncId)
            .where('desired', '=', 0)
            .where('confirmed', '=', 0)
            .where('updated_at', '<', cutoff)
            .limit(CHUNK),
        )
        // Again on the row itself: PostgreSQL re-checks these (not the subquery) on a row that a
        // run or webhook changed meanwhile, which must stay.
        .where('desired', '=', 0)
        .where('confirmed', '=', 0)
        .where('updated_at', '<', cutoff)
        .executeTakeFirstOrThrow(),
    );
  }
  return total;
}
