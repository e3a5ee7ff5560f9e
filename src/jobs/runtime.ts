import type { Context } from '../store';
import { alertSettings } from './alert-conditions';
import { createJobQueue, type JobQueueOptions } from './index';
import { JOB_KEYS, type JobQueue, TASKS } from './port';
import { retentionMs } from './retention';
import { buildTasks, recoverySweeps, SCHEDULE_CRONTAB } from './tasks';
import { dailyVerifySample } from './verify';

/**
 * Starts working jobs in this process: every task, the minute scheduler tick and alert
 * evaluation, the recovery sweeps, and one tick and one evaluation at once so syncs that fell
 * due (and problems that arose) while nothing was running are not kept waiting a minute.
 */
export async function startWorker(
  ctx: Context,
  opts: { concurrency: number; queue?: JobQueueOptions; jobs?: JobQueue },
): Promise<JobQueue> {
  // A bad AMPSIGNAL_RETENTION_DAYS or AMPSIGNAL_ALERT_* stops the start with one line, not every tick later.
  retentionMs();
  alertSettings();
  dailyVerifySample();
  const jobs = opts.jobs ?? createJobQueue(ctx, opts.queue);
  await jobs.start(buildTasks(ctx, jobs), {
    concurrency: opts.concurrency,
    crontab: SCHEDULE_CRONTAB,
    sweeps: recoverySweeps(ctx, jobs),
  });
  await jobs.add(TASKS.scheduleTick, {}, { jobKey: JOB_KEYS.scheduleAtStart });
  await jobs.add(TASKS.alertsEvaluate, {}, { jobKey: JOB_KEYS.alertsAtStart });
  return jobs;
}
