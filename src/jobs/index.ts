import type { Context } from '../store';
import { GraphileJobQueue, type GraphileQueueOptions } from './graphile-queue';
import type { JobQueue } from './port';
import { SqliteJobQueue, type SqliteQueueOptions } from './sqlite-queue';

export interface JobQueueOptions {
  sqlite?: SqliteQueueOptions;
  graphile?: GraphileQueueOptions;
}

/** Embedded runner on SQLite, graphile-worker on PostgreSQL (DESIGN §6). */
export function createJobQueue(ctx: Context, opts: JobQueueOptions = {}): JobQueue {
  return ctx.store.engine.can.embeddedJobRunner
    ? new SqliteJobQueue(ctx, opts.sqlite)
    : new GraphileJobQueue(ctx, opts.graphile);
}

export type { CronItem, JobInfo, JobQueue, JobSpec, TaskHandler, TaskList } from './port';
