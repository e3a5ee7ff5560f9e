import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphileJobQueue, graphileSchema, livenessName, migrateGraphile } from '../../src/jobs/graphile-queue';
import { type Context, openContext } from '../../src/store';
import { freshDatabaseUrl, SKIP_POSTGRES } from '../helpers/db';
import { gate, waitFor } from './helpers';

// What graphile-worker alone gets wrong for us, on a real PostgreSQL: it frees a crashed process's
// locks only after 4 hours, and it stops every pool in the database when any schema migrates.
describe.skipIf(SKIP_POSTGRES)('graphile-worker adapter [postgres]', () => {
  const contexts: Context[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  const queues: GraphileJobQueue[] = [];
  const gates: Array<() => void> = [];
  let ctx: Context;
  let url: string;

  async function freshContext(): Promise<{ ctx: Context; url: string }> {
    const fresh = await freshDatabaseUrl('postgres');
    cleanups.push(fresh.cleanup);
    const c = await openContext({ db: fresh.url, migrate: 'auto' });
    contexts.push(c);
    return { ctx: c, url: fresh.url };
  }
  beforeAll(async () => {
    ({ ctx, url } = await freshContext());
  });
  afterAll(async () => {
    for (const open of gates) open();
    await Promise.all(queues.map((q) => q.stop()));
    await Promise.all(contexts.map((c) => c.close()));
    for (const c of cleanups) await c();
  });

  // The tests call the sweep themselves. A lock must be a second old before its pool can be called
  // dead: a new pool's liveness session may still be connecting (production waits 10 s).
  const STALE_MS = 1_000;
  const queue = (on: Context = ctx) => {
    const q = new GraphileJobQueue(on, { pollMs: 100, sweepMs: 3_600_000, staleLockMs: STALE_MS });
    queues.push(q);
    return q;
  };
  const held = () => {
    const g = gate();
    gates.push(g.open);
    return g;
  };

  async function query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query<R>(text, values)).rows;
    } finally {
      await c.end();
    }
  }
  const gwSchema = (c: Context) => {
    if (c.store.target.dialect !== 'postgres') throw new Error('postgres only');
    return graphileSchema(c.store.target);
  };
  const lockAgeMs = async (queueName: string) =>
    Number(
      (
        await query<{ ms: number }>(
          `select extract(epoch from now() - locked_at) * 1000 as ms from "${gwSchema(ctx)}"._private_job_queues where queue_name = $1 and locked_at is not null`,
          [queueName],
        )
      )[0]?.ms ?? 0,
    );
  const lockedQueues = () =>
    query<{ queue_name: string; locked_by: string | null }>(
      `select queue_name, locked_by from "${gwSchema(ctx)}"._private_job_queues where locked_by is not null`,
    );

  it('a long job of a live runner keeps its job and queue lock through another runner’s sweep', async () => {
    const g = held();
    let runs = 0;
    const a = queue();
    const b = queue();
    const tasks = {
      long: async () => {
        runs++;
        await g.promise;
      },
    };
    await a.start(tasks, { concurrency: 2 });
    await b.start(tasks, { concurrency: 2 });
    await a.add('long', {}, { queue: 'app:1' });
    await waitFor(async () => (await a.list()).some((j) => j.state === 'running'), { what: 'the job to run' });
    await waitFor(async () => (await lockAgeMs('app:1')) > STALE_MS, { what: 'the lock to be old enough to be swept' });

    expect(await b.sweepDeadWorkers()).toEqual([]);
    expect(await a.sweepDeadWorkers()).toEqual([]);
    expect((await lockedQueues()).map((q) => q.queue_name)).toEqual(['app:1']);
    expect((await a.list()).map((j) => j.state)).toEqual(['running']);

    g.open();
    await waitFor(async () => (await a.list()).length === 0 && (await lockedQueues()).length === 0, {
      what: 'the job to finish',
    });
    expect(runs).toBe(1);
  });

  it('a runner whose liveness is gone has its job and queue freed, and the job runs elsewhere', async () => {
    const g = held();
    const ranBy: string[] = [];
    const a = queue();
    const b = queue();
    // Only the first run blocks: if another schema's migration restarts a's pool meanwhile, its
    // new pool is as live as b and may be the one that runs the freed job.
    const stuck = async () => {
      ranBy.push('a');
      if (ranBy.length === 1) await g.promise;
    };
    await a.start({ stuck }, { concurrency: 1 });
    await a.add('stuck', {}, { queue: 'app:2' });
    await waitFor(async () => (await a.list()).some((j) => j.state === 'running'), { what: 'the job to run' });
    const holder = (await lockedQueues()).find((q) => q.queue_name === 'app:2')?.locked_by;
    expect(holder).toBeTruthy();
    // What kill -9 does to a process's liveness: its database session, and so its advisory locks, end.
    const killed = await query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [
      livenessName(holder!),
    ]);
    expect(killed).toHaveLength(1);

    await b.start({ stuck: async () => void ranBy.push('b') }, { concurrency: 1 });
    const dead = await waitFor(
      async () => {
        const d = await b.sweepDeadWorkers();
        return d.length > 0 ? d : undefined;
      },
      { what: 'the sweep to find the dead runner' },
    );
    expect(dead).toContain(holder);
    // Run again by a live pool: b's, or a new one of a's if another schema's migration restarted it.
    await waitFor(async () => ranBy.length === 2 && (await b.list()).length === 0, {
      what: 'the freed job to run again',
    });
    expect(ranBy[0]).toBe('a');
  });

  it('a job superseded by a newer one while its dead runner held it runs again instead of sitting failed', async () => {
    const g = held();
    const ranBy: string[] = [];
    const a = queue();
    const b = queue();
    const wake = async (p: { n: number }) => {
      ranBy.push(`a${p.n}`);
      if (ranBy.length === 1) await g.promise;
    };
    await a.start({ wake }, { concurrency: 1 });
    await a.add('wake', { n: 1 }, { queue: 'app:3', jobKey: 'wake:3' });
    await waitFor(async () => (await a.list()).some((j) => j.state === 'running'), { what: 'the job to run' });
    // The same key added while the first job runs: graphile makes a new job and spends the old one's attempts.
    await a.add('wake', { n: 2 }, { queue: 'app:3', jobKey: 'wake:3' });
    const holder = (await lockedQueues()).find((q) => q.queue_name === 'app:3')?.locked_by;
    await query('select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1', [
      livenessName(holder!),
    ]);

    await b.start({ wake: async (p: { n: number }) => void ranBy.push(`b${p.n}`) }, { concurrency: 1 });
    await waitFor(async () => (await b.sweepDeadWorkers()).includes(holder!), {
      what: 'the sweep to find the dead runner',
    });
    await waitFor(async () => (await b.list()).length === 0, { what: 'both jobs to run and leave the queue' });
    // Job 1 ran again after the sweep, job 2 ran: on b, or on a new pool of a's if another
    // schema's migration restarted it meanwhile (a live pool either way).
    expect(ranBy[0]).toBe('a1');
    expect(new Set(ranBy.slice(1).map((r) => r.slice(1)))).toEqual(new Set(['1', '2']));
  });

  it('installing the job schema of another ampsignal in this database does not stop our runner', async () => {
    const pools = new Set<string>();
    const a = queue();
    await a.start({ probe: async (_p, helpers) => void pools.add(helpers.workerId) }, { concurrency: 1 });
    await a.add('probe', {});
    await waitFor(() => pools.size === 1, { what: 'the first probe' });

    // graphile-worker announces every breaking migration on a database-wide channel, and stops its
    // pool when it hears one: here a second install in its own schema of the same database.
    const other = await freshContext();
    if (other.ctx.store.target.dialect !== 'postgres') throw new Error('postgres only');
    await migrateGraphile(other.ctx.store.target);

    // The stopped pool is replaced by a new one (a new pool id), which runs the jobs added since.
    await waitFor(
      async () => {
        await a.add('probe', {});
        return pools.size >= 2;
      },
      { what: 'a probe to run on the replacement pool', intervalMs: 200 },
    );
    const settled = await Promise.race([
      a.failed.then(() => 'failed'),
      new Promise((r) => setImmediate(() => r('running'))),
    ]);
    expect(settled).toBe('running');
    await waitFor(async () => (await a.list()).length === 0, { what: 'every probe to run' });
  });

  it('when another schema migrates, new jobs run at once while the stopped pool finishes a long job', async () => {
    const g = held();
    const ran: string[] = [];
    const a = queue();
    await a.start(
      {
        // Task names of their own: the other tests' runners on this schema are still running.
        slow: async () => {
          ran.push('long');
          await g.promise;
          ran.push('long done');
        },
        quick: async () => void ran.push('quick'),
      },
      { concurrency: 2 },
    );
    await a.add('slow', {}, { queue: 'app:4' });
    await waitFor(() => ran.includes('long'), { what: 'the long job to start' });

    const other = await freshContext();
    if (other.ctx.store.target.dialect !== 'postgres') throw new Error('postgres only');
    await migrateGraphile(other.ctx.store.target);
    await a.add('quick', {}, { queue: 'app:5' });
    await waitFor(() => ran.includes('quick'), { what: 'a new job to run while the long one still runs' });
    expect(ran).toEqual(['long', 'quick']);

    g.open();
    await waitFor(async () => ran.includes('long done') && (await a.list()).length === 0, {
      what: 'the long job to finish and leave the queue',
    });
  });

  it('a newer ampsignal migrating our own job schema makes the runner fail, so the process exits', async () => {
    const own = await freshContext();
    const a = queue(own.ctx);
    await a.start({ probe: async () => {} }, { concurrency: 1 });
    // What a newer graphile-worker does when it migrates this schema: record the migration, then announce it.
    await query(`insert into "${gwSchema(own.ctx)}".migrations (id, breaking) values (999999, true)`);
    await query(`select pg_notify('worker:migrate', '{"migrationNumber":999999,"breaking":true}')`);
    const err = await a.failed;
    expect(err.message).toMatch(/was migrated .*by a newer ampsignal; restart this process/);
  });
});
