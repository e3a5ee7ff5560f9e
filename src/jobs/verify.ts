import { z } from 'zod';
import { AmpError, isAmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import { MAX_VERIFY_SAMPLE, verifySync } from '../sync/verify';
import { log } from '../telemetry/logger';
import { JOB_KEYS, type JobQueue, QUEUES, TASKS, type TaskHandler } from './port';

/**
 * The daily read-back of every active sync (task `sync.verify`): a small sample, so a day of
 * syncs costs a few reads each at 1 request per second per app. Verifications of one app run in
 * one named queue, so its read limit lives in one process at a time. The schedule tick enqueues
 * a sync whose last completed verification is a day old (a failed one is tried again after an
 * hour); the drift alert then reads the rate it wrote.
 */

const DAY_MS = 24 * 3_600_000;
const RETRY_FAILED_MS = 3_600_000;

/** Users read back per sync per day (AMPSIGNAL_VERIFY_SAMPLE; 0 turns the daily verify off). */
export const DEFAULT_DAILY_VERIFY_SAMPLE = 20;

const sampleSetting = z.coerce
  .number({ message: 'must be a number' })
  .int('must be a whole number')
  .min(0, 'must be at least 0')
  .max(MAX_VERIFY_SAMPLE, `must be at most ${MAX_VERIFY_SAMPLE}`);

export function dailyVerifySample(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.AMPSIGNAL_VERIFY_SAMPLE;
  if (raw === undefined || raw.trim() === '') return DEFAULT_DAILY_VERIFY_SAMPLE;
  const r = sampleSetting.safeParse(raw.trim());
  if (!r.success)
    throw new AmpError(
      'invalid_input',
      `AMPSIGNAL_VERIFY_SAMPLE ${r.error.issues[0]?.message ?? 'is invalid'} (got "${raw}")`,
    );
  return r.data;
}

/** Active syncs that delivered at least once, on an active destination, whose daily verify is due. */
export async function dueVerifications(ctx: Context, now: number): Promise<Array<{ syncId: string; appId: string }>> {
  const db = ctx.store.db;
  const syncs = await db
    .selectFrom('syncs as s')
    .innerJoin('destinations as d', 'd.id', 's.destination_id')
    .select(['s.id', 'd.app_id'])
    .where('s.status', '=', 'active')
    .where('d.status', '=', 'active')
    .where('s.last_run_id', 'is not', null)
    .execute();
  if (syncs.length === 0) return [];
  // Within the last day: a completed one, one still running (its lease renewed), or one that
  // failed or was abandoned (lease lapsed) within the hour keeps a sync from being verified again.
  const recent = await db
    .selectFrom('verifications')
    .select(['sync_id', 'status', 'started_at', 'lease_until'])
    .where('started_at', '>', now - DAY_MS)
    .execute();
  const blocked = new Set(
    recent
      .filter(
        (r) =>
          r.status === 'completed' ||
          (r.status === 'running' && Number(r.lease_until ?? 0) >= now) ||
          Number(r.started_at) > now - RETRY_FAILED_MS,
      )
      .map((r) => r.sync_id),
  );
  return syncs.filter((s) => !blocked.has(s.id)).map((s) => ({ syncId: s.id, appId: s.app_id }));
}

/** Enqueues the due daily verifications (one pending job per sync, in its app's read queue). */
export async function enqueueDueVerifications(ctx: Context, jobs: JobQueue, now: number): Promise<string[]> {
  if (dailyVerifySample() === 0) return [];
  const due = await dueVerifications(ctx, now);
  for (const d of due)
    await jobs.add(
      TASKS.syncVerify,
      { syncId: d.syncId },
      { queue: QUEUES.reads(d.appId), jobKey: JOB_KEYS.syncVerify(d.syncId) },
    );
  return due.map((d) => d.syncId);
}

/** The `sync.verify` task: a failure is recorded on the verification row and waits for the next tick, not retried. */
export function verifyTask(ctx: Context): TaskHandler {
  return async (payload: { syncId: string; sample?: number }, helpers) => {
    // A tick may enqueue the sync again while its job runs (a job key frees once its job is
    // locked), so the task itself keeps the promise of one verification a day.
    const due = await dueVerifications(ctx, Date.now());
    if (!due.some((d) => d.syncId === payload.syncId)) return;
    try {
      const v = await verifySync(ctx, payload.syncId, {
        sample: payload.sample ?? dailyVerifySample(),
        trigger: 'schedule',
        signal: helpers.signal,
      });
      log.info(
        { sync: v.sync_id, verification: v.id, match_rate: v.match_rate, drifted: v.drifted },
        'read-back verification done',
      );
    } catch (e) {
      const err = toAmpError(e);
      if (isAmpError(e) && e.kind === 'internal') throw e;
      // A stopping worker cancels it: recorded failed (cancelled), it waits for a later tick like
      // any failure, so a retry of the job would find it not due; throwing would only make the
      // queue log an error at every shutdown.
      if (err.code === 'aborted') log.info({ sync: payload.syncId }, 'read-back verification cancelled');
      else log.warn({ sync: payload.syncId, err: err.message }, 'read-back verification failed');
    }
  };
}
