import { EventEmitter } from 'node:events';
import {
  type TaskList as GraphileTaskList,
  type JobHelpers,
  Logger,
  makeWorkerUtils,
  parseCronItems,
  type Runner,
  run,
  runMigrations,
  type WorkerEvents,
  type WorkerUtils,
} from 'graphile-worker';
import pg from 'pg';
import { AmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import { type PostgresTarget, postgresTargetOf } from '../store/database';
import { log } from '../telemetry/logger';
import { graphileLeaseOwner, releaseLeasesOf } from './leases';
import {
  type CronItem,
  JOB_KEYS,
  type JobInfo,
  type JobQueue,
  type JobSpec,
  type Sweep,
  type TaskHandler,
  type TaskList,
} from './port';
import { startSweeps } from './sweeps';

export interface GraphileQueueOptions {
  /** How often graphile polls for future/retried jobs; new jobs arrive by LISTEN/NOTIFY at once. */
  pollMs?: number;
  /** How often to look for jobs held by dead worker processes. */
  sweepMs?: number;
  /**
   * A lock must be at least this old before its worker can be declared dead: a pool locks jobs
   * a few milliseconds before its liveness lock is held. With the sweep's period, the longest a
   * dead process's job waits is about staleLockMs + sweepMs + pollMs (≈ 7 s; the target is 10 s).
   */
  staleLockMs?: number;
  defaultMaxAttempts?: number;
}

/** graphile-worker's schema: beside the store's isolated schema in tests, else its default. */
export function graphileSchema(target: PostgresTarget): string {
  return target.schema ? `${target.schema}_gw` : 'graphile_worker';
}

// Every live worker process holds a session advisory lock per graphile worker pool id; a process
// killed with -9 loses its connection and so its locks. graphile-worker itself only frees
// locks after 4 hours, which would stall a whole OneSignal app's queue; a sweep that finds a
// lock whose holder's advisory lock is free unlocks it at once.
const LOCK_NS = 'ampsignal-gw:';
// What graphile-worker sets process.exitCode to when a breaking migration stops its pool.
const GRAPHILE_MIGRATED_EXIT_CODE = 57;

/** The liveness session's application_name: `ampsignal liveness <pool id>`. */
export function livenessName(poolId: string): string {
  return `ampsignal liveness ${poolId}`;
}

/**
 * graphile-worker's own migration races when several processes install a fresh schema at once
 * (seen as `column "job_count" … does not exist`); one advisory lock per schema serialises them.
 */
async function withMigrationLock<T>(pool: pg.Pool, schema: string, fn: () => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const key = `ampsignal-gw-migrate:${schema}`;
  try {
    await client.query('select pg_advisory_lock(hashtext($1))', [key]);
    try {
      return await fn();
    } finally {
      await client.query('select pg_advisory_unlock(hashtext($1))', [key]);
    }
  } finally {
    client.release();
  }
}

/** A pool whose idle or checked-out clients losing their connection never crash the process. */
function makePool(target: PostgresTarget, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: target.connectionString, max });
  pool.on('error', (e) => log.warn({ err: e.message }, 'job queue database connection lost'));
  pool.on('connect', (client) =>
    client.on('error', (e) => log.warn({ err: e.message }, 'job queue database connection lost')),
  );
  return pool;
}

function graphileLogger(): Logger {
  return new Logger((scope) => (level, message, meta) => {
    const fields = { ...scope, ...(meta ?? {}) } as Record<string, unknown>;
    if (level === 'error') log.error(fields, message);
    else if (level === 'warning') log.warn(fields, message);
    else if (level === 'info') log.info(fields, message);
    else log.debug(fields, message);
  });
}

export class GraphileJobQueue implements JobQueue {
  readonly kind = 'graphile' as const;
  private readonly target: PostgresTarget;
  private readonly schema: string;
  private readonly opts: Required<GraphileQueueOptions>;
  private pool: pg.Pool | undefined;
  private utilsP: Promise<WorkerUtils> | undefined;
  private runner: Runner | undefined;
  /** One liveness session per live pool (see LOCK_NS), resolved once its lock is held. */
  private readonly liveness = new Map<string, Promise<pg.Client | undefined>>();
  private readonly poolIds = new Set<string>();
  private sweeper: NodeJS.Timeout | undefined;
  private stopSweeps: (() => Promise<void>) | undefined;
  private launchSpec:
    | { concurrency: number; taskList: GraphileTaskList; cron: ReturnType<typeof parseCronItems> }
    | undefined;
  private stopping = false;
  private relaunching: Promise<void> | undefined;
  /** Runners until they have stopped (a replaced one may still be finishing its jobs). */
  private readonly draining = new Set<Promise<void>>();
  private fail!: (e: Error) => void;
  readonly failed = new Promise<Error>((resolve) => (this.fail = resolve));
  private poolSize = 4;
  private readonly ctx: Context;

  constructor(ctx: Context, opts: GraphileQueueOptions = {}) {
    this.ctx = ctx;
    this.target = postgresTargetOf(ctx.store, 'graphile-worker');
    this.schema = graphileSchema(this.target);
    this.opts = {
      pollMs: opts.pollMs ?? 1000,
      sweepMs: opts.sweepMs ?? 2_000,
      staleLockMs: opts.staleLockMs ?? 4_000,
      defaultMaxAttempts: opts.defaultMaxAttempts ?? 25,
    };
  }

  // graphile gets its own pool: the store's pool parses int8 as numbers, graphile expects strings.
  private getPool(): pg.Pool {
    if (!this.pool) {
      this.pool = makePool(this.target, this.poolSize);
    }
    return this.pool;
  }

  private utils(): Promise<WorkerUtils> {
    // makeWorkerUtils migrates the schema itself, so it is what must run under the lock.
    this.utilsP ??= withMigrationLock(this.getPool(), this.schema, () =>
      makeWorkerUtils({ pgPool: this.getPool(), schema: this.schema, logger: graphileLogger() }),
    );
    this.utilsP.catch(() => {
      this.utilsP = undefined;
    });
    return this.utilsP;
  }

  async add(task: string, payload: unknown, spec: JobSpec = {}): Promise<void> {
    const u = await this.utils();
    await u.addJob(task, (payload ?? {}) as object, {
      ...(spec.queue ? { queueName: spec.queue } : {}),
      ...(spec.jobKey ? { jobKey: spec.jobKey } : {}),
      ...(spec.runAt !== undefined ? { runAt: new Date(spec.runAt) } : {}),
      maxAttempts: spec.maxAttempts ?? this.opts.defaultMaxAttempts,
    });
  }

  async list(): Promise<JobInfo[]> {
    await this.utils();
    const { rows } = await this.getPool().query<{
      id: string;
      task: string;
      payload: unknown;
      queue_name: string | null;
      key: string | null;
      run_at: Date;
      attempts: number;
      max_attempts: number;
      locked_by: string | null;
      last_error: string | null;
    }>(
      `select j.id, t.identifier as task, j.payload, q.queue_name, j.key, j.run_at, j.attempts, j.max_attempts, j.locked_by, j.last_error
         from "${this.schema}"._private_jobs j
         join "${this.schema}"._private_tasks t on t.id = j.task_id
         left join "${this.schema}"._private_job_queues q on q.id = j.job_queue_id
        order by j.id`,
    );
    return rows.map((r) => ({
      id: String(r.id),
      task: r.task,
      payload: r.payload,
      queue: r.queue_name,
      jobKey: r.key,
      runAt: r.run_at.getTime(),
      attempts: r.attempts,
      maxAttempts: r.max_attempts,
      state: r.locked_by ? 'running' : r.attempts >= r.max_attempts ? 'failed' : 'pending',
      lastError: r.last_error,
    }));
  }

  async start(tasks: TaskList, opts: { concurrency: number; crontab?: CronItem[]; sweeps?: Sweep[] }): Promise<void> {
    if (this.launchSpec) throw new AmpError('internal', 'job runner already started');
    const concurrency = Math.max(1, opts.concurrency);
    this.poolSize = Math.max(4, concurrency + 3);
    // An add before start may have created the pool at the small default size.
    if (this.pool) (this.pool as unknown as { options: { max: number } }).options.max = this.poolSize;
    await this.utils();

    const taskList: GraphileTaskList = {};
    for (const [name, handler] of Object.entries(tasks)) {
      taskList[name] = async (payload, helpers) => wrapHandler(this.schema, handler, payload, helpers);
    }
    const cron = parseCronItems(
      (opts.crontab ?? []).map((c) => ({
        task: c.task,
        match: c.pattern,
        identifier: c.identifier,
        payload: (c.payload ?? {}) as Record<string, unknown>,
        options: { backfillPeriod: 0, jobKey: JOB_KEYS.cron(c.identifier), maxAttempts: 3 },
      })),
    );
    this.launchSpec = { concurrency, taskList, cron };
    await this.launch();
    this.sweeper = setInterval(
      () =>
        void this.sweepDeadWorkers().catch((e) =>
          log.error({ err: toAmpError(e).message }, 'dead worker sweep failed'),
        ),
      this.opts.sweepMs,
    );
    this.sweeper.unref();
    this.stopSweeps = startSweeps(opts.sweeps ?? []);
  }

  private async launch(): Promise<void> {
    const spec = this.launchSpec;
    if (!spec) throw new AmpError('internal', 'job runner was not started');
    const migration = await this.latestMigration();
    const events: WorkerEvents = new EventEmitter();
    let poolId: string | undefined;
    let runner: Runner | undefined;
    // graphile-worker 0.17 locks jobs and queues in the name of the worker *pool*, not of each worker.
    events.on('pool:create', ({ workerPool }: { workerPool: { id: string } }) => {
      poolId = workerPool.id;
      this.poolIds.add(poolId);
      this.liveness.set(poolId, this.holdLiveness(poolId));
    });
    // A shutdown we did not ask for is replaced at once; the old pool finishes its running jobs.
    events.on('pool:gracefulShutdown', () => void (runner && this.replace(runner, migration)));
    runner = await run({
      pgPool: this.getPool(),
      schema: this.schema,
      concurrency: spec.concurrency,
      pollInterval: this.opts.pollMs,
      noHandleSignals: true,
      // Handlers get the abort signal soon after stop(), so deliveries release their leases promptly.
      gracefulShutdownAbortTimeout: 500,
      logger: graphileLogger(),
      events,
      taskList: spec.taskList,
      parsedCronItems: spec.cron,
    });
    this.runner = runner;
    if (poolId) await this.liveness.get(poolId);
    const stopped = runner;
    const stoppedPool = poolId;
    const finished = stopped.promise
      .catch((e: unknown) => log.warn({ err: toAmpError(e).message }, 'job runner stopped with an error'))
      .then(async () => {
        // Whatever the old pool left locked becomes fair game for the dead-worker sweep.
        if (stoppedPool) await this.dropLiveness(stoppedPool);
        await this.replace(stopped, migration);
      });
    this.draining.add(finished);
    void finished.finally(() => this.draining.delete(finished));
  }

  /**
   * graphile-worker stops its pool by itself when it hears NOTIFY "worker:migrate" for a breaking
   * migration, and that channel is database-wide: installing graphile's schema for another
   * ampsignal in the same database (another schema: a second install, every test's fresh schema)
   * stopped ours too, and the process lived on working nothing. Unless our own schema moved, a new
   * pool takes over; if it did, this code is older than the schema and the process must go.
   * A no-op for a runner that is no longer current (stop() asked for it, or already replaced).
   */
  private async replace(old: Runner, migration: number): Promise<void> {
    if (this.runner !== old || this.stopping) return;
    this.runner = undefined;
    // graphile sets the process exit code for its breaking-migration stop; whether we exit is decided here.
    if (process.exitCode === GRAPHILE_MIGRATED_EXIT_CODE) process.exitCode = undefined;
    const now = await this.latestMigration().catch(() => migration);
    if (now !== migration) {
      this.fail(
        new AmpError(
          'internal',
          `the job queue schema ${this.schema} was migrated (${migration} → ${now}) by a newer ampsignal; restart this process with that version`,
        ),
      );
      return;
    }
    log.warn(
      { schema: this.schema },
      'job runner stopped by itself (another schema in this database migrated?); starting a new one',
    );
    if (this.stopping) return;
    // stop() waits for this launch, then stops whatever runner it left.
    this.relaunching = this.launch().catch((e) => this.fail(toAmpError(e)));
  }

  private async latestMigration(): Promise<number> {
    const { rows } = await this.getPool().query<{ id: number | null }>(
      `select max(id) as id from "${this.schema}".migrations`,
    );
    return Number(rows[0]?.id ?? 0);
  }

  /**
   * A session of its own per pool, named after it in pg_stat_activity, holding the pool's advisory
   * lock for as long as the pool lives: a process killed with -9 loses it with its connections.
   */
  private async holdLiveness(poolId: string): Promise<pg.Client | undefined> {
    const c = new pg.Client({ connectionString: this.target.connectionString, application_name: livenessName(poolId) });
    c.on('error', (e) => log.error({ err: e.message, pool: poolId }, 'worker liveness connection lost'));
    try {
      await c.connect();
      await c.query('select pg_advisory_lock(hashtext($1))', [LOCK_NS + poolId]);
      return c;
    } catch (e) {
      log.error({ err: toAmpError(e).message, pool: poolId }, 'could not take worker liveness lock');
      await c.end().catch(() => {});
      return undefined;
    }
  }

  private async dropLiveness(poolId: string): Promise<void> {
    const c = await this.liveness.get(poolId);
    this.liveness.delete(poolId);
    this.poolIds.delete(poolId);
    await c?.end().catch(() => {});
  }

  /** Frees jobs and queues locked by worker processes that no longer exist. */
  async sweepDeadWorkers(): Promise<string[]> {
    const pool = this.getPool();
    const { rows } = await pool.query<{ locked_by: string }>(
      `select locked_by from "${this.schema}"._private_jobs
        where locked_by is not null and locked_at < now() - make_interval(secs => $1)
       union
       select locked_by from "${this.schema}"._private_job_queues
        where locked_by is not null and locked_at < now() - make_interval(secs => $1)`,
      [this.opts.staleLockMs / 1000],
    );
    const dead: string[] = [];
    for (const { locked_by } of rows) {
      if (this.poolIds.has(locked_by)) continue;
      const client = await pool.connect();
      try {
        await client.query('begin');
        const r = await client.query<{ free: boolean }>('select pg_try_advisory_xact_lock(hashtext($1)) as free', [
          LOCK_NS + locked_by,
        ]);
        await client.query('commit');
        if (r.rows[0]?.free) dead.push(locked_by);
      } catch (e) {
        await client.query('rollback').catch(() => {});
        log.error({ err: (e as Error).message }, 'dead worker check failed');
      } finally {
        client.release();
      }
    }
    if (dead.length > 0) {
      log.warn({ workers: dead }, 'releasing jobs held by dead workers');
      // Leases first: once the jobs are unlocked another worker may pick them up at once.
      await releaseLeasesOf(this.ctx, dead.map(graphileLeaseOwner));
      // A job whose key was added again while it ran has its attempts set to the maximum by
      // graphile (the new job carries the news); freed as is, it would sit "failed" forever. So
      // would a last attempt the crash cut short. Every task here is an idempotent wake-up: each
      // gets one more attempt.
      await pool.query(
        `update "${this.schema}"._private_jobs set max_attempts = attempts + 1 where locked_by = any($1::text[]) and attempts >= max_attempts`,
        [dead],
      );
      await (await this.utils()).forceUnlockWorkers(dead);
    }
    return dead;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    await this.stopSweeps?.();
    await this.relaunching;
    const runner = this.runner;
    this.runner = undefined;
    if (runner) await runner.stop().catch((e) => log.error({ err: (e as Error).message }, 'graphile stop failed'));
    await Promise.all(this.draining);
    await Promise.all([...this.liveness.keys()].map((id) => this.dropLiveness(id)));
    const utils = this.utilsP;
    this.utilsP = undefined;
    if (utils) await (await utils.catch(() => undefined))?.release();
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => {});
  }
}

async function wrapHandler(schema: string, handler: TaskHandler, payload: unknown, helpers: JobHelpers): Promise<void> {
  try {
    await handler(payload, {
      signal: helpers.abortSignal,
      workerId: graphileLeaseOwner(helpers.job.locked_by ?? 'unknown'),
      jobId: String(helpers.job.id),
    });
  } catch (e) {
    const err = toAmpError(e);
    const retryable = err.kind === 'retryable' || !(e instanceof AmpError);
    if (retryable && (await supersededByNewerAdd(schema, helpers))) {
      // graphile's add_job, given the key of a job already running, adds a new job and caps the
      // running one's attempts so it never retries; failing now would leave it as a permanent
      // failure beside the newer job that does its work. The newer job stands in, as on SQLite.
      log.info({ task: helpers.job.task_identifier, job: helpers.job.id, err: err.message }, 'job superseded');
      return;
    }
    if (!retryable) {
      // graphile retries every failure until max_attempts; capping max_attempts at the attempts
      // already made turns this failure into its permanent-failure state, kept with last_error.
      await helpers.query(`update "${schema}"._private_jobs set max_attempts = attempts where id = $1`, [
        helpers.job.id,
      ]);
    }
    throw new Error(`${err.code}: ${err.message}`);
  }
}

async function supersededByNewerAdd(schema: string, helpers: JobHelpers): Promise<boolean> {
  const key = helpers.job.key;
  if (!key) return false;
  // Only add_job and remove_job clear the key of a locked job, and both mean "do not retry it".
  const { rows } = await helpers.query<{ cleared: boolean }>(
    `select key is null as cleared from "${schema}"._private_jobs where id = $1`,
    [helpers.job.id],
  );
  return rows[0]?.cleared === true;
}

/** Installs or upgrades graphile-worker's schema (`ampsignal migrate` on PostgreSQL). */
export async function migrateGraphile(target: PostgresTarget): Promise<void> {
  const pool = makePool(target, 2);
  try {
    const schema = graphileSchema(target);
    await withMigrationLock(pool, schema, () => runMigrations({ pgPool: pool, schema, logger: graphileLogger() }));
  } finally {
    await pool.end();
  }
}
