import type { Context } from '../store';
import { createJobQueue, type JobQueueOptions } from './index';
import type { JobQueue } from './port';
import { retentionMs } from './retention';
import { buildTasks, recoverySweeps, SCHEDULE_CRONTAB } from './tasks';

/**
 * Starts working jobs in this process: every task, the minute scheduler tick, the recovery
 * sweeps, and one tick at once so syncs that fell due while nothing was running are not kept
 * waiting a minute.
 */
export async function startWorker(
  ctx: Context,
  opts: { concurrency: number; queue?: JobQueueOptions; jobs?: JobQueue },
): Promise<JobQueue> {
  // A bad AMPSIGNAL_RETENTION_DAYS stops the start with one line, not every tick later.
  retentionMs();
  const jobs = opts.jobs ?? createJobQueue(ctx, opts.queue);
  await jobs.start(buildTasks(ctx, jobs), {
    concurrency: opts.concurrency,
    crontab: SCHEDULE_CRONTAB,
    sweeps: recoverySweeps(ctx, jobs),
  });
  await jobs.add('schedule.tick', {}, { jobKey: 'schedule.tick:start' });
  return jobs;
}
