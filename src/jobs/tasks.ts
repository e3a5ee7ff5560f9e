import { AmpError, isAmpError } from '../errors';
import { forwardStream } from '../events/forward';
import type { Context } from '../store';
import { LEASE_MS, renewEveryMs } from '../store/leases';
import { applyPendingWebhooks, applyWebhookMessage } from '../sync/cohort-webhooks';
import { deliverDestination, nextRetryAt } from '../sync/deliver';
import { runSync } from '../sync/run';
import { closeAbandonedRuns } from '../sync/run-record';
import { log } from '../telemetry/logger';
import { evaluateAlerts } from './alerts';
import {
  type CronItem,
  JOB_KEYS,
  type JobQueue,
  QUEUES,
  type Sweep,
  TASKS,
  type TaskHandler,
  type TaskList,
} from './port';
import { pruneExpired } from './retention';
import { enqueueDueSyncs } from './schedule';
import { enqueueDueVerifications, verifyTask } from './verify';

/** The scheduler's heartbeat: due syncs are enqueued once a minute (and once at start); alert conditions are looked at every minute. */
export const SCHEDULE_CRONTAB: CronItem[] = [
  { task: TASKS.scheduleTick, pattern: '* * * * *', identifier: 'schedule.tick' },
  { task: TASKS.alertsEvaluate, pattern: '* * * * *', identifier: 'alerts.evaluate' },
];

/** Asks for delivery of a destination's pending ledger rows, in its app's queue. */
export async function enqueueDelivery(
  ctx: Context,
  jobs: JobQueue,
  destinationId: string,
  runAt?: number,
): Promise<void> {
  const dest = await ctx.store.db
    .selectFrom('destinations')
    .select(['id', 'app_id'])
    .where('id', '=', destinationId)
    .executeTakeFirst();
  if (!dest) throw new AmpError('not_found', `destination ${destinationId} not found`);
  const later = runAt !== undefined && runAt > Date.now();
  await jobs.add(
    TASKS.deliver,
    { destinationId },
    {
      queue: QUEUES.delivery(dest.app_id),
      jobKey: later ? JOB_KEYS.deliverRetry(destinationId) : JOB_KEYS.deliver(destinationId),
      ...(later ? { runAt } : {}),
    },
  );
}

/** Asks for forwarding of a stream's outbox. */
export async function enqueueForward(jobs: JobQueue, streamId: string, runAt?: number): Promise<void> {
  const later = runAt !== undefined && runAt > Date.now();
  await jobs.add(
    TASKS.forward,
    { streamId },
    {
      queue: QUEUES.stream(streamId),
      jobKey: later ? JOB_KEYS.forwardRetry(streamId) : JOB_KEYS.forward(streamId),
      ...(later ? { runAt } : {}),
    },
  );
}

export function buildTasks(ctx: Context, jobs: JobQueue): TaskList {
  return {
    [TASKS.syncRun]: async (payload: { syncId: string; trigger?: string }) => {
      try {
        await runSync(ctx, payload.syncId, { trigger: payload.trigger ?? 'schedule', deliver: 'enqueue' });
      } catch (e) {
        // A run started by hand (or by another tick) is pulling the cohort now: this tick's pull
        // would be the same, and the next tick comes on the sync's cadence.
        if (!(isAmpError(e) && e.code === 'conflict')) throw e;
        log.info({ sync: payload.syncId, reason: e.message }, 'scheduled run skipped');
        return;
      }
      // Whatever the run's outcome, rows of the destination may be pending; an idle delivery is cheap.
      const sync = await ctx.store.db
        .selectFrom('syncs')
        .select('destination_id')
        .where('id', '=', payload.syncId)
        .executeTakeFirst();
      if (sync) await enqueueDelivery(ctx, jobs, sync.destination_id);
    },

    [TASKS.deliver]: deliverTask(ctx, jobs),

    [TASKS.applyWebhook]: async (payload: { inboxId: number | string }) => {
      const { destinationIds } = await applyWebhookMessage(ctx, payload.inboxId);
      for (const id of new Set(destinationIds)) await enqueueDelivery(ctx, jobs, id);
    },

    [TASKS.forward]: async (payload: { streamId: string }, helpers) => {
      const r = await forwardStream(ctx, payload.streamId, { workerId: helpers.workerId, signal: helpers.signal });
      if (r.pending === 0) return;
      if (helpers.signal.aborted) return enqueueForward(jobs, payload.streamId);
      if (r.nextAttemptAt !== null)
        await enqueueForward(jobs, payload.streamId, Math.max(r.nextAttemptAt, Date.now() + 250));
    },

    [TASKS.alertsEvaluate]: async (_payload: unknown, helpers) => {
      await evaluateAlerts(ctx, { workerId: helpers.workerId, signal: helpers.signal });
    },

    [TASKS.syncVerify]: verifyTask(ctx),

    [TASKS.scheduleTick]: scheduleTickTask(ctx, jobs),
  };
}

/** Delivers a destination's due rows; comes back when retries are due, or at once when stopped mid-way. */
function deliverTask(ctx: Context, jobs: JobQueue): TaskHandler {
  return async (payload: { destinationId: string }, helpers) => {
    let result: { pending: number };
    try {
      result = await deliverDestination(ctx, payload.destinationId, {
        workerId: helpers.workerId,
        signal: helpers.signal,
      });
    } catch (e) {
      // A paused destination is resumed by a person; its rows wait, there is nothing to retry.
      if (isAmpError(e) && e.code === 'run_state') {
        log.info({ destination: payload.destinationId, reason: e.message }, 'delivery skipped');
        return;
      }
      throw e;
    }
    if (result.pending === 0) return;
    if (helpers.signal.aborted) {
      // Stopped mid-way: hand the rest to whichever worker runs next.
      await enqueueDelivery(ctx, jobs, payload.destinationId);
      return;
    }
    const next = await nextRetryAt(ctx, payload.destinationId);
    if (next !== null) await enqueueDelivery(ctx, jobs, payload.destinationId, Math.max(next, Date.now() + 1000));
  };
}

/** The minute tick: due syncs and verifications, the webhook sweep, retention. */
function scheduleTickTask(ctx: Context, jobs: JobQueue): TaskHandler {
  return async () => {
    const { enqueued } = await enqueueDueSyncs(ctx, jobs, Date.now());
    if (enqueued.length) log.info({ syncs: enqueued }, 'scheduled syncs enqueued');
    const verifying = await enqueueDueVerifications(ctx, jobs, Date.now());
    if (verifying.length) log.info({ syncs: verifying }, 'daily read-back verifications enqueued');
    // Sweep: a stored webhook whose webhook.apply job was never added (enqueue failed) or
    // failed is applied here; applying twice is harmless (deltas carry their source time).
    const swept = await applyPendingWebhooks(ctx, { limit: 1000 });
    for (const id of swept.destinationIds) await enqueueDelivery(ctx, jobs, id);
    const pruned = await pruneExpired(ctx);
    if (pruned.events || pruned.webhooks || pruned.ledger || pruned.records)
      log.info(pruned, 'pruned what is past retention');
  };
}

/**
 * What every serve and worker process sweeps every few seconds: runs whose process died (their
 * lease lapsed) are closed, and the destinations of those that died delivering get a delivery
 * for their pending rows, which nothing else would start.
 */
export function recoverySweeps(ctx: Context, jobs: JobQueue): Sweep[] {
  return [
    {
      name: 'abandoned runs',
      everyMs: renewEveryMs(LEASE_MS),
      run: async () => {
        const closed = await closeAbandonedRuns(ctx);
        if (closed.failed.length || closed.finalized.length)
          log.warn(closed, 'runs of a process that stopped were closed');
        for (const id of closed.destinationIds) await enqueueDelivery(ctx, jobs, id);
      },
    },
  ];
}
