import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { sql } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { addDestination } from '../../src/app/destinations';
import { refreshSourceCohorts } from '../../src/connectors/amplitude/cohorts';
import { startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { startOneSignalEmulator } from '../../src/emulators/onesignal/index';
import { createJobQueue } from '../../src/jobs';
import { graphileSchema, migrateGraphile } from '../../src/jobs/graphile-queue';
import { enqueueDelivery } from '../../src/jobs/tasks';
import { type Context, openContext } from '../../src/store';
import { LEASE_MS } from '../../src/store/leases';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { AMP, sourceAndDestination } from '../amplitude/fixtures';
import { runCli, startCli } from '../cli/proc';
import { describeDialects, freshDatabaseUrl } from '../helpers/db';
import { cohortSync, range } from '../sync/setup';
import { waitFor } from './helpers';

const BIN = resolve(__dirname, '../../bin/ampsignal.mjs');

/** Everything a test started, stopped after it whatever happened. */
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function freshContext(dialect: 'sqlite' | 'postgres'): Promise<{ ctx: Context; url: string }> {
  const fresh = await freshDatabaseUrl(dialect);
  const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
  cleanups.push(fresh.cleanup, () => ctx.close());
  // What `ampsignal migrate` does on PostgreSQL: graphile-worker's schema too, before a worker starts.
  if (ctx.store.target.dialect === 'postgres') {
    expect(graphileSchema(ctx.store.target)).toMatch(/_gw$/);
    await migrateGraphile(ctx.store.target);
  }
  return { ctx, url: fresh.url };
}

describeDialects('recovery after kill -9', (dialect) => {
  it('a worker killed mid-delivery: another worker takes its job and rows within a lease and delivers the rest', async () => {
    const { ctx, url } = await freshContext(dialect);
    const users = range('u', 0, 1_500);
    const appId = randomUUID();
    const emu = await startOneSignalEmulator({
      apps: [{ appId, apiKey: 'key-recovery' }],
      users: { mode: 'seeded', ids: users },
    });
    cleanups.push(() => emu.close());
    // 150 requests a second: the delivery takes ~10 s, so the kill lands in the middle of it.
    const dest = await addDestination(ctx, {
      name: 'recovery',
      app_id: appId,
      api_key: 'key-recovery',
      api_url: emu.url,
      rate_limit_per_second: 150,
    });
    const { sync } = await cohortSync(ctx, dest.id, users);
    // Applied, delivery left to the workers' job queue.
    const run = await runSync(ctx, sync.id, { deliver: 'enqueue' });
    expect(run).toMatchObject({ status: 'running', added: users.length });
    const jobs = createJobQueue(ctx);
    cleanups.push(() => jobs.stop());
    await enqueueDelivery(ctx, jobs, dest.id);

    const accepted = () => emu.state.stats().byApp[appId]?.accepted ?? 0;
    const worker = () => {
      const w = startCli(['--db', url, 'worker', '--concurrency', '2', '--json'], { AMPSIGNAL_LOG_LEVEL: 'warn' });
      cleanups.push(async () => {
        if (w.child.exitCode === null) w.child.kill('SIGKILL');
        await w.exited;
      });
      return w;
    };
    const doomed = worker();
    await doomed.started;
    await waitFor(() => accepted() >= 150, { what: 'the first worker to deliver', timeoutMs: 60_000 });
    const survivor = worker();
    await survivor.started;
    expect(accepted()).toBeLessThan(users.length - 300); // still mid-delivery

    doomed.child.kill('SIGKILL');
    const killedAt = Date.now();
    await doomed.exited;
    // Requests the dead worker had sent are answered within milliseconds; what comes later is the survivor's.
    await new Promise((r) => setTimeout(r, 300));
    const atKill = accepted();
    await waitFor(() => accepted() > atKill, {
      what: 'the survivor to resume delivery',
      timeoutMs: 2 * LEASE_MS,
      intervalMs: 20,
    });
    const stallMs = Date.now() - killedAt;
    expect(stallMs).toBeLessThan(2 * LEASE_MS);

    await waitFor(
      async () => {
        const r = await sql<{ n: number }>`SELECT COUNT(*) AS n FROM ledger WHERE desired <> confirmed`.execute(
          ctx.store.db,
        );
        return Number(r.rows[0]?.n) === 0;
      },
      { what: 'every row delivered', timeoutMs: 60_000, intervalMs: 200 },
    );
    for (const u of [users[0]!, users[700]!, users.at(-1)!])
      expect(emu.state.getUser(u, appId)).toMatchObject({ [sync.tag_key]: '1' });
    const finished = await waitFor(
      async () => {
        const r = await ctx.store.db.selectFrom('runs').selectAll().where('id', '=', run.id).executeTakeFirstOrThrow();
        return r.status === 'completed' ? r : undefined;
      },
      { what: 'the run to be finalized', timeoutMs: 30_000 },
    );
    expect(finished).toMatchObject({ added: users.length, pending: 0, failed: 0 });
  }, 240_000); // two worker processes and up to a minute for each phase on a loaded machine

  it('a `sync run` killed while it loads its snapshot: the next plain CLI command closes its run', async () => {
    const { ctx, url } = await freshContext(dialect);
    // The download job never completes: the run stays in its load phase until it is killed.
    const amplitude = await startAmplitudeEmulator({
      projects: [AMP],
      pollsBeforeReady: 1_000_000,
      cohorts: [{ id: 'coh_slow', name: 'Slow', members: [{ user_id: 'a' }, { user_id: 'b' }] }],
    });
    cleanups.push(() => amplitude.close());
    const { source, dest } = await sourceAndDestination(ctx, amplitude.url, 'http://127.0.0.1:9');
    await refreshSourceCohorts(ctx, source.id);
    const sync = await createSync(ctx, { cohortId: 'coh_slow', destinationId: dest.id, cadence: 'manual' });

    const child = spawn(process.execPath, [BIN, '--db', url, 'sync', 'run', sync.id, '--json'], {
      env: { ...process.env, AMPSIGNAL_AMPLITUDE_POLL_MS: '50' },
      stdio: 'ignore',
    });
    const exited = new Promise((r) => child.on('exit', r));
    cleanups.push(async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    });
    const runId = await waitFor(
      async () =>
        (await ctx.store.db.selectFrom('runs').select('id').where('sync_id', '=', sync.id).executeTakeFirst())?.id,
      { what: 'the run to start', timeoutMs: 30_000 },
    );
    // Polling Amplitude: the run is loading, alive and leased.
    await waitFor(() => amplitude.stats().cohorts.requests['202']! >= 3, {
      what: 'the run to poll',
      timeoutMs: 30_000,
    });
    child.kill('SIGKILL');
    await exited;

    const closed = await waitFor(
      async () => {
        const out = await runCli(['--db', url, 'runs', 'show', runId, '--json']);
        expect(out.stderr).toBe('');
        const view = JSON.parse(out.stdout) as { status: string; error: string | null };
        return view.status === 'running' ? undefined : view;
      },
      { what: 'a CLI command to close the run', timeoutMs: 4 * LEASE_MS, intervalMs: 250 },
    );
    expect(closed.status).toBe('failed');
    expect(closed.error).toMatch(/abandoned: the process running it stopped before the diff was applied/);
    const staged = await ctx.store.db.selectFrom('staging').select('run_id').where('run_id', '=', runId).execute();
    expect(staged).toEqual([]);
  }, 240_000);
});
