/**
 * The job port. Embedded mode (SQLite) implements it with an in-process runner over the
 * `jobs` table; scale-out mode (PostgreSQL) with graphile-worker. Both pass one contract suite.
 *
 * Work functions (runSync, deliverDestination, forwardStream, applyWebhookMessage…) never know
 * which adapter called them: a task handler is `(payload) => Promise<void>`, and throwing an
 * AmpError whose kind is 'retryable' asks for a retry with backoff.
 */
export interface JobSpec {
  /** Jobs in one named queue run one at a time, in order (e.g. `onesignal:<app_id>`). */
  queue?: string;
  /** At most one pending job per key; adding again replaces its payload and run time. */
  jobKey?: string;
  /** Epoch ms; default now. */
  runAt?: number;
  maxAttempts?: number;
}

/** Passed to every handler: `signal` aborts when the runner stops, so long work can release its leases and return. */
export interface TaskHelpers {
  signal: AbortSignal;
  /** Unique per runner, for lease ownership in work functions. */
  workerId: string;
  jobId: string;
}

// biome-ignore lint/suspicious/noExplicitAny: each task declares (and checks) its own payload type, as graphile-worker's tasks do.
export type TaskHandler = (payload: any, helpers: TaskHelpers) => Promise<void>;
export type TaskList = Record<string, TaskHandler>;

export interface CronItem {
  /** Task to run on the schedule. */
  task: string;
  /** Cron pattern, e.g. `* * * * *`. */
  pattern: string;
  /** Unique name, so two processes never run the same tick twice. */
  identifier: string;
  payload?: unknown;
}

/**
 * Work every running process does on a timer of its own, whether or not it holds a job: crash
 * recovery (closing the runs of dead processes) cannot wait for a job, since the job that would
 * run it may be what a dead process holds.
 */
export interface Sweep {
  name: string;
  everyMs: number;
  run(): Promise<void>;
}

/** A job as the queue holds it (for the CLI, tests and operators); completed jobs are gone. */
export interface JobInfo {
  id: string;
  task: string;
  payload: unknown;
  queue: string | null;
  jobKey: string | null;
  runAt: number;
  attempts: number;
  maxAttempts: number;
  /** 'failed' = permanently failed (terminal error or attempts exhausted), kept with lastError. */
  state: 'pending' | 'running' | 'failed';
  lastError: string | null;
}

export interface JobQueue {
  /** 'sqlite' = the embedded runner, 'graphile' = graphile-worker on PostgreSQL. */
  readonly kind: 'sqlite' | 'graphile';
  add(task: string, payload: unknown, spec?: JobSpec): Promise<void>;
  /** Every job not yet completed, oldest first. */
  list(): Promise<JobInfo[]>;
  /** Starts working jobs until stop(); `concurrency` jobs at once across queues; sweeps on their timers. */
  start(tasks: TaskList, opts: { concurrency: number; crontab?: CronItem[]; sweeps?: Sweep[] }): Promise<void>;
  /** Stops taking new jobs and waits for running ones to finish. */
  stop(): Promise<void>;
  /** Settles only if the runner stopped by itself and cannot go on; the process should then exit. */
  readonly failed: Promise<Error>;
}

/**
 * Task names, named queues and job keys: every handler, adapter and caller spells them through
 * these, so a key that folds duplicate work is the same key wherever the work is asked for.
 */
export const TASKS = {
  syncRun: 'sync.run',
  deliver: 'destination.deliver',
  applyWebhook: 'webhook.apply',
  forward: 'stream.forward',
  scheduleTick: 'schedule.tick',
  alertsEvaluate: 'alerts.evaluate',
  syncVerify: 'sync.verify',
} as const;

export const QUEUES = {
  /** One per OneSignal app: its rate limit then lives in exactly one process at a time. */
  delivery: (appId: string) => `onesignal:${appId}`,
  /** One per stream: its outbox drains in order, one forwarder at a time. */
  stream: (streamId: string) => `stream:${streamId}`,
  /** One per source: its cohort messages apply in arrival order. */
  webhooks: (sourceId: string) => `webhooks:${sourceId}`,
  /** One per OneSignal app for reads (View user: 1 request per second per app). */
  reads: (appId: string) => `onesignal-reads:${appId}`,
} as const;

/**
 * Immediate wake-ups and delayed retries use different keys: a retry scheduled for later must
 * never replace (and so postpone) a wake-up that asks for the work now.
 */
export const JOB_KEYS = {
  /** Folds repeated wake-ups of one sync into one pending run. */
  syncRun: (syncId: string) => `sync.run:${syncId}`,
  deliver: (destinationId: string) => `deliver:${destinationId}`,
  deliverRetry: (destinationId: string) => `deliver-retry:${destinationId}`,
  forward: (streamId: string) => `stream.forward:${streamId}`,
  forwardRetry: (streamId: string) => `stream.forward-retry:${streamId}`,
  /** The tick every worker runs once at start, so syncs due while nothing ran are not kept waiting. */
  scheduleAtStart: 'schedule.tick:start',
  /** Likewise for alert conditions: a worker looks at them when it starts, not a minute later. */
  alertsAtStart: 'alerts.evaluate:start',
  /** One pending job per cron item, however many processes schedule it. */
  cron: (identifier: string) => `cron:${identifier}`,
  /** One pending daily read-back per sync. */
  syncVerify: (syncId: string) => `sync.verify:${syncId}`,
} as const;
