import { Cron } from 'croner';
import { sql } from 'kysely';
import { AmpError, retryDelayMs, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { LEASE_MS, renewEveryMs } from '../store/leases';
import { log } from '../telemetry/logger';
import { type CronItem, JOB_KEYS, type JobInfo, type JobQueue, type JobSpec, type Sweep, type TaskList } from './port';
import { startSweeps } from './sweeps';

export interface SqliteQueueOptions {
  /** How often to look for jobs added by other processes (the CLI); in-process adds wake at once. */
  pollMs?: number;
  /**
   * A claimed job is another process's to take over once this lease lapses (crash recovery); the
   * runner renews it while the job runs.
   */
  leaseMs?: number;
  /** The first retry waits up to this long; the ceiling doubles per attempt up to retryCapMs. */
  retryBaseMs?: number;
  retryCapMs?: number;
  defaultMaxAttempts?: number;
}

// `locked_by` doubles as the state column so the table from 001_initial needs no change:
// NULL = pending, FAILED = permanently failed (kept for inspection), anything else = the runner
// holding the lease until `locked_until`.
const FAILED = '!failed';

interface ClaimedJob {
  id: number;
  task: string;
  payload: string;
  queue: string | null;
  jobKey: string | null;
  attempts: number;
  maxAttempts: number;
}

/**
 * The embedded job runner over the `jobs` table. Every state change is one guarded UPDATE, so
 * several runners (two `serve` processes, or a test's second instance) on one SQLite file never
 * run the same job twice and never run two jobs of one named queue at once.
 */
export class SqliteJobQueue implements JobQueue {
  readonly kind = 'sqlite' as const;
  private readonly runnerId = newId('run');
  private readonly opts: Required<SqliteQueueOptions>;
  private tasks: TaskList = {};
  private concurrency = 1;
  private running = new Map<number, Promise<void>>();
  /** Per running job: aborted when its lease was lost to another runner (this one stalled past it). */
  private lost = new Map<number, AbortController>();
  private stopSweeps: (() => Promise<void>) | undefined;
  private started = false;
  private stopping = false;
  private wake: (() => void) | undefined;
  private loopDone: Promise<void> | undefined;
  private crons: Cron[] = [];
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  // The loop logs and survives every error, so it never stops by itself.
  readonly failed = new Promise<Error>(() => {});

  constructor(
    private readonly ctx: Context,
    opts: SqliteQueueOptions = {},
  ) {
    this.opts = {
      pollMs: opts.pollMs ?? 250,
      leaseMs: opts.leaseMs ?? LEASE_MS,
      retryBaseMs: opts.retryBaseMs ?? 2_000,
      retryCapMs: opts.retryCapMs ?? 10 * 60_000,
      defaultMaxAttempts: opts.defaultMaxAttempts ?? 25,
    };
  }

  private get db() {
    return this.ctx.store.db;
  }

  async add(task: string, payload: unknown, spec: JobSpec = {}): Promise<void> {
    const now = Date.now();
    const row = {
      task,
      payload: JSON.stringify(payload ?? {}),
      queue: spec.queue ?? null,
      job_key: spec.jobKey ?? null,
      run_at: spec.runAt ?? now,
      attempts: 0,
      max_attempts: spec.maxAttempts ?? this.opts.defaultMaxAttempts,
      locked_by: null,
      locked_until: null,
      last_error: null,
      created_at: now,
    };
    if (!spec.jobKey) {
      await this.db.insertInto('jobs').values(row).execute();
    } else {
      // A keyed job loses its key when it is claimed (see claim), so a key present here always
      // belongs to a job that has not started: replacing it is safe, and adding while the keyed
      // job runs inserts a fresh row, so the follow-up run is never lost.
      await this.db
        .insertInto('jobs')
        .values(row)
        .onConflict((oc) =>
          oc.column('job_key').doUpdateSet({
            task: (eb) => eb.ref('excluded.task'),
            payload: (eb) => eb.ref('excluded.payload'),
            queue: (eb) => eb.ref('excluded.queue'),
            run_at: (eb) => eb.ref('excluded.run_at'),
            max_attempts: (eb) => eb.ref('excluded.max_attempts'),
            attempts: 0,
            last_error: null,
          }),
        )
        .execute();
    }
    this.wake?.();
  }

  async list(): Promise<JobInfo[]> {
    const rows = await this.db.selectFrom('jobs').selectAll().orderBy('id').execute();
    const now = Date.now();
    return rows.map((r) => ({
      id: String(r.id),
      task: r.task,
      payload: JSON.parse(r.payload) as unknown,
      queue: r.queue,
      jobKey: r.job_key,
      runAt: r.run_at,
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      state:
        r.locked_by === FAILED
          ? 'failed'
          : r.locked_by !== null && (r.locked_until ?? 0) >= now
            ? 'running'
            : 'pending',
      lastError: r.last_error,
    }));
  }

  async start(tasks: TaskList, opts: { concurrency: number; crontab?: CronItem[]; sweeps?: Sweep[] }): Promise<void> {
    if (this.started) throw new AmpError('internal', 'job runner already started');
    this.started = true;
    this.tasks = tasks;
    this.concurrency = Math.max(1, opts.concurrency);
    for (const item of opts.crontab ?? []) {
      // Several embedded processes on one file would each fire the tick; the job key folds
      // them into one pending job.
      this.crons.push(
        new Cron(item.pattern, { protect: true }, () => {
          this.add(item.task, item.payload ?? {}, { jobKey: JOB_KEYS.cron(item.identifier) }).catch((e) =>
            log.error({ err: toAmpError(e).message, cron: item.identifier }, 'cron enqueue failed'),
          );
        }),
      );
    }
    this.heartbeat = setInterval(() => void this.renewLeases(), renewEveryMs(this.opts.leaseMs));
    this.heartbeat.unref();
    this.stopSweeps = startSweeps(opts.sweeps ?? []);
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    if (!this.started || this.stopping) {
      await this.loopDone;
      return;
    }
    this.stopping = true;
    this.abort.abort();
    for (const c of this.crons) c.stop();
    this.wake?.();
    await this.stopSweeps?.();
    await this.loopDone;
    await Promise.allSettled([...this.running.values()]);
    if (this.heartbeat) clearInterval(this.heartbeat);
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let claimedAny = false;
      try {
        while (!this.stopping && this.running.size < this.concurrency) {
          const job = await this.claim();
          if (!job) break;
          claimedAny = true;
          const p = this.execute(job).finally(() => {
            this.running.delete(job.id);
            this.wake?.();
          });
          this.running.set(job.id, p);
        }
      } catch (e) {
        log.error({ err: toAmpError(e).message }, 'job claim failed');
      }
      if (this.stopping) break;
      if (claimedAny && this.running.size < this.concurrency) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.opts.pollMs);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  /** Picks the next due job whose queue is idle and takes it with a guarded UPDATE. */
  private async claim(): Promise<ClaimedJob | undefined> {
    if (Object.keys(this.tasks).length === 0) return undefined;
    const now = Date.now();
    for (const c of await this.dueCandidates(now)) {
      if (this.running.has(c.id)) continue;
      if (!(await this.take(c, now))) continue;
      return {
        id: c.id,
        task: c.task,
        payload: c.payload,
        queue: c.queue,
        jobKey: c.job_key,
        attempts: c.attempts + 1,
        maxAttempts: c.max_attempts,
      };
    }
    return undefined;
  }

  /** Up to 20 due, unlocked jobs of known tasks whose queue is idle, oldest first. */
  private dueCandidates(now: number) {
    return (
      this.db
        .selectFrom('jobs as j')
        .select(['j.id', 'j.task', 'j.payload', 'j.queue', 'j.job_key', 'j.attempts', 'j.max_attempts'])
        .where('j.run_at', '<=', now)
        // Like graphile-worker, a runner only takes tasks it knows (an older process leaves newer tasks).
        .where('j.task', 'in', Object.keys(this.tasks))
        .where((eb) =>
          eb.or([
            eb('j.locked_by', 'is', null),
            eb.and([eb('j.locked_by', '<>', FAILED), eb('j.locked_until', '<', now)]),
          ]),
        )
        // Skip queues that are busy now, so one long queue cannot starve the others.
        .where((eb) =>
          eb.or([
            eb('j.queue', 'is', null),
            eb.not(
              eb.exists(
                eb
                  .selectFrom('jobs as q')
                  .select('q.id')
                  .whereRef('q.queue', '=', 'j.queue')
                  .where('q.locked_by', 'is not', null)
                  .where('q.locked_by', '<>', FAILED)
                  .where('q.locked_until', '>=', now),
              ),
            ),
          ]),
        )
        .orderBy('j.run_at')
        .orderBy('j.id')
        .limit(20)
        .execute()
    );
  }

  /** Locks one candidate unless another runner (or its queue) got there first. */
  private async take(c: { id: number; queue: string | null }, now: number): Promise<boolean> {
    let claim = this.db
      .updateTable('jobs')
      .set({
        locked_by: this.runnerId,
        locked_until: now + this.opts.leaseMs,
        attempts: sql`attempts + 1`,
        job_key: null,
      })
      .where('id', '=', c.id)
      .where((eb) =>
        eb.or([eb('locked_by', 'is', null), eb.and([eb('locked_by', '<>', FAILED), eb('locked_until', '<', now)])]),
      );
    if (c.queue !== null) {
      const queue = c.queue;
      // One statement, so the queue check and the claim are atomic even across processes.
      claim = claim.where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('jobs as q')
              .select('q.id')
              .where('q.queue', '=', queue)
              .where('q.id', '<>', c.id)
              .where('q.locked_by', 'is not', null)
              .where('q.locked_by', '<>', FAILED)
              .where('q.locked_until', '>=', now),
          ),
        ),
      );
    }
    const res = await claim.executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }

  private async execute(job: ClaimedJob): Promise<void> {
    const handler = this.tasks[job.task];
    const lost = new AbortController();
    this.lost.set(job.id, lost);
    try {
      if (!handler) throw new AmpError('internal', `no handler for task "${job.task}"`);
      await handler(JSON.parse(job.payload), {
        signal: AbortSignal.any([this.abort.signal, lost.signal]),
        workerId: `${this.runnerId}:${job.id}`,
        jobId: String(job.id),
      });
      await this.db.deleteFrom('jobs').where('id', '=', job.id).where('locked_by', '=', this.runnerId).execute();
    } catch (e) {
      await this.fail(job, e).catch((err) =>
        log.error({ err: toAmpError(err).message, job: job.id }, 'could not record job failure'),
      );
    } finally {
      this.lost.delete(job.id);
    }
  }

  private async fail(job: ClaimedJob, e: unknown): Promise<void> {
    const err = toAmpError(e);
    // Anything not classified (a bug, a dropped DB connection) is retried: a wake-up must not be lost.
    const retryable = err.kind === 'retryable' || !(e instanceof AmpError);
    const message = `${err.code}: ${err.message}`.slice(0, 2000);
    if (!retryable || job.attempts >= job.maxAttempts) {
      log.warn({ task: job.task, job: job.id, attempts: job.attempts, err: message }, 'job failed permanently');
      await this.db
        .updateTable('jobs')
        .set({ locked_by: FAILED, locked_until: null, last_error: message })
        .where('id', '=', job.id)
        .where('locked_by', '=', this.runnerId)
        .execute();
      return;
    }
    const wait = retryDelayMs(
      { baseMs: this.opts.retryBaseMs, capMs: this.opts.retryCapMs },
      job.attempts,
      err.retryAfterMs,
    );
    const runAt = Date.now() + wait;
    log.info({ task: job.task, job: job.id, attempts: job.attempts, err: message }, 'job will retry');
    await this.db.transaction().execute(async (trx) => {
      const restoreKey = job.jobKey;
      if (restoreKey) {
        // A newer add with the same key already stands in for this job; keep just that one.
        const newer = await trx.selectFrom('jobs').select('id').where('job_key', '=', restoreKey).executeTakeFirst();
        if (newer) {
          await trx.deleteFrom('jobs').where('id', '=', job.id).where('locked_by', '=', this.runnerId).execute();
          return;
        }
      }
      await trx
        .updateTable('jobs')
        .set({ locked_by: null, locked_until: null, last_error: message, run_at: runAt, job_key: restoreKey })
        .where('id', '=', job.id)
        .where('locked_by', '=', this.runnerId)
        .execute();
    });
  }

  /**
   * Running jobs keep their lease; a crashed process's leases lapse within leaseMs and others
   * take its jobs. A job whose lease another runner took meanwhile (this process stalled past it)
   * is told to stop through its signal, so two runners never go on working it.
   */
  private async renewLeases(): Promise<void> {
    const ids = [...this.lost.keys()];
    if (ids.length === 0) return;
    try {
      const renewed = await this.db
        .updateTable('jobs')
        .set({ locked_until: Date.now() + this.opts.leaseMs })
        .where('locked_by', '=', this.runnerId)
        .where('id', 'in', ids)
        .returning('id')
        .execute();
      const kept = new Set(renewed.map((r) => Number(r.id)));
      for (const id of ids) {
        const lost = this.lost.get(id);
        if (kept.has(id) || !lost) continue;
        log.warn({ job: id }, 'job lease lost to another runner; stopping it here');
        lost.abort(new AmpError('aborted', `job ${id} was taken over by another runner`));
      }
    } catch (e) {
      log.error({ err: toAmpError(e).message }, 'job lease renewal failed');
    }
  }
}
