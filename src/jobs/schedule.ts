import { AmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import { log } from '../telemetry/logger';
import type { JobQueue } from './port';

export const CADENCES = ['manual', 'once', 'hourly', 'daily', 'realtime'] as const;
export type Cadence = (typeof CADENCES)[number];

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/**
 * When the next scheduled pull is due after one that ran (or was due) at `fromMs`.
 * `realtime` syncs live on webhook deltas and pull once a day to reconcile; `once` and
 * `manual` have no next pull (a `once` sync's single pull is its creation-time due date).
 */
export function nextRunAt(cadence: string, fromMs: number): number | null {
  switch (cadence) {
    case 'hourly':
      return fromMs + HOUR_MS;
    case 'daily':
    case 'realtime':
      return fromMs + DAY_MS;
    case 'once':
    case 'manual':
      return null;
    default:
      throw new AmpError('invalid_input', `unknown cadence "${cadence}"; use one of ${CADENCES.join(', ')}`);
  }
}

/** The job key that folds repeated wake-ups of one sync into one pending run. */
export function syncRunJobKey(syncId: string): string {
  return `sync.run:${syncId}`;
}

/**
 * Enqueues a `sync.run` for every active sync that is due, exactly once across any number of
 * concurrent callers: each caller moves `next_run_at` forward with an UPDATE guarded on the old
 * value, and only the caller whose UPDATE matched enqueues.
 */
export async function enqueueDueSyncs(ctx: Context, jobs: JobQueue, nowMs: number): Promise<{ enqueued: string[] }> {
  const db = ctx.store.db;
  const due = await db
    .selectFrom('syncs')
    .select(['id', 'cadence', 'next_run_at'])
    .where('status', '=', 'active')
    .where('next_run_at', 'is not', null)
    .where('next_run_at', '<=', nowMs)
    .orderBy('next_run_at')
    .execute();
  const enqueued: string[] = [];
  for (const s of due) {
    const old = s.next_run_at as number;
    let next: number | null;
    try {
      // From now, not from the missed due time: after downtime a sync pulls once, not once per missed hour.
      next = nextRunAt(s.cadence, Math.max(nowMs, old));
    } catch (e) {
      log.error({ sync: s.id, err: toAmpError(e).message }, 'sync has an unknown cadence; not scheduled');
      continue;
    }
    const res = await db
      .updateTable('syncs')
      .set({ next_run_at: next })
      .where('id', '=', s.id)
      .where('next_run_at', '=', old)
      .where('status', '=', 'active')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) continue;
    try {
      await jobs.add('sync.run', { syncId: s.id, trigger: 'schedule' }, { jobKey: syncRunJobKey(s.id) });
      enqueued.push(s.id);
    } catch (e) {
      // Put the due time back so the next tick tries again instead of silently skipping a pull.
      const q = db.updateTable('syncs').set({ next_run_at: old }).where('id', '=', s.id);
      await (next === null ? q.where('next_run_at', 'is', null) : q.where('next_run_at', '=', next)).execute();
      throw e;
    }
  }
  return { enqueued };
}
