import { applyPendingWebhooks, applyWebhookMessage } from '../connectors/amplitude/webhooks';
import { AmpError, isAmpError } from '../errors';
import { forwardStream } from '../events/forward';
import type { Context } from '../store';
import { LEASE_MS, renewEveryMs } from '../store/leases';
import { deliverDestination, nextRetryAt } from '../sync/deliver';
import { runSync } from '../sync/run';
import { closeAbandonedRuns } from '../sync/runs';
import { log } from '../telemetry/logger';
import { evaluateAlerts } from './alerts';
import type { CronItem, JobQueue, Sweep, TaskList } from './port';
import { pruneExpired } from './retention';
import { enqueueDueSyncs } from './schedule';

/** The scheduler's heartbeat: due syncs are enqueued once a minute (and once at start); alert conditions are looked at every minute. */
export const SCHEDULE_CRONTAB: CronItem[] = [
  { task: 'schedule.tick', pattern: '* * * * *', identifier: 'schedule.tick' },
  { task: 'alerts.evaluate', pattern: '* * * * *', identifier: 'alerts.evaluate' },
];

/** One named queue per OneSignal app: its rate limit then lives in exactly one process at a time. */
export function deliveryQueue(appId: string): string {
  return `onesignal:${appId}`;
}

export function streamQueue(streamId: string): string {
  return `stream:${streamId}`;
}

// Immediate wake-ups and delayed retries use different keys: a retry scheduled for later must
// never replace (and so postpone) a wake-up that asks for delivery now.
const deliverKey = (id: string) => `deliver:${id}`;
const deliverRetryKey = (id: string) => `deliver-retry:${id}`;
const forwardKey = (id: string) => `stream.forward:${id}`;
const forwardRetryKey = (id: string) => `stream.forward-retry:${id}`;

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
    'destination.deliver',
    { destinationId },
    {
      queue: deliveryQueue(dest.app_id),
      jobKey: later ? deliverRetryKey(destinationId) : deliverKey(destinationId),
      ...(later ? { runAt } : {}),
    },
  );
}

/** Asks for forwarding of a stream's outbox. */
export async function enqueueForward(jobs: JobQueue, streamId: string, runAt?: number): Promise<void> {
  const later = runAt !== undefined && runAt > Date.now();
  await jobs.add(
    'stream.forward',
    { streamId },
    {
      queue: streamQueue(streamId),
      jobKey: later ? forwardRetryKey(streamId) : forwardKey(streamId),
      ...(later ? { runAt } : {}),
    },
  );
}

export function buildTasks(ctx: Context, jobs: JobQueue): TaskList {
  return {
    'sync.run': async (payload: { syncId: string; trigger?: string }) => {
      await runSync(ctx, payload.syncId, { trigger: payload.trigger ?? 'schedule', deliver: 'enqueue' });
      // Whatever the run's outcome, rows of the destination may be pending; an idle delivery is cheap.
      const sync = await ctx.store.db
        .selectFrom('syncs')
        .select('destination_id')
        .where('id', '=', payload.syncId)
        .executeTakeFirst();
      if (sync) await enqueueDelivery(ctx, jobs, sync.destination_id);
    },

    'destination.deliver': async (payload: { destinationId: string }, helpers) => {
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
    },

    'webhook.apply': async (payload: { inboxId: number | string }) => {
      const { destinationIds } = await applyWebhookMessage(ctx, payload.inboxId);
      for (const id of new Set(destinationIds)) await enqueueDelivery(ctx, jobs, id);
    },

    'stream.forward': async (payload: { streamId: string }, helpers) => {
      const r = await forwardStream(ctx, payload.streamId, { workerId: helpers.workerId, signal: helpers.signal });
      if (r.pending === 0) return;
      if (helpers.signal.aborted) return enqueueForward(jobs, payload.streamId);
      if (r.nextAttemptAt !== null)
        await enqueueForward(jobs, payload.streamId, Math.max(r.nextAttemptAt, Date.now() + 250));
    },

    'alerts.evaluate': async (_payload: unknown, helpers) => {
      await evaluateAlerts(ctx, { workerId: helpers.workerId, signal: helpers.signal });
    },

    'schedule.tick': async () => {
      const { enqueued } = await enqueueDueSyncs(ctx, jobs, Date.now());
      if (enqueued.length) log.info({ syncs: enqueued }, 'scheduled syncs enqueued');
      // Sweep: a stored webhook whose webhook.apply job was never added (enqueue failed) or
      // failed is applied here; applying twice is harmless (deltas carry their source time).
      const swept = await applyPendingWebhooks(ctx, { limit: 1000 });
      for (const id of swept.destinationIds) await enqueueDelivery(ctx, jobs, id);
      const pruned = await pruneExpired(ctx);
      if (pruned.events || pruned.webhooks || pruned.ledger) log.info(pruned, 'pruned what is past retention');
    },
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
