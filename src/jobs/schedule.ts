import { toAmpError } from '../errors';
import type { Context } from '../store';
import { nextRunAt } from '../sync/cadence';
import { log } from '../telemetry/logger';
import { JOB_KEYS, type JobQueue, TASKS } from './port';

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
      await jobs.add(TASKS.syncRun, { syncId: s.id, trigger: 'schedule' }, { jobKey: JOB_KEYS.syncRun(s.id) });
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
