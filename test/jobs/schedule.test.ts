import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createJobQueue } from '../../src/jobs';
import { enqueueDueSyncs } from '../../src/jobs/schedule';
import { type Context, openContext } from '../../src/store';
import { nextRunAt } from '../../src/sync/cadence';
import { closeAbandonedRuns } from '../../src/sync/run-record';
import { getRunView } from '../../src/sync/runs';
import { stagedIds } from '../../src/sync/staging';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination, seedSync as seedSyncRow } from '../helpers/seed';

const HOUR = 3_600_000;

describe('nextRunAt', () => {
  const t = Date.UTC(2026, 0, 1, 12, 0, 0);
  it('follows each cadence', () => {
    expect(nextRunAt('hourly', t)).toBe(t + HOUR);
    expect(nextRunAt('daily', t)).toBe(t + 24 * HOUR);
    // realtime: webhook deltas plus one reconcile pull a day
    expect(nextRunAt('realtime', t)).toBe(t + 24 * HOUR);
    expect(nextRunAt('once', t)).toBeNull();
    expect(nextRunAt('manual', t)).toBeNull();
  });
  it('rejects an unknown cadence with the valid ones listed', () => {
    expect(() => nextRunAt('weekly', t)).toThrow(/manual, once, hourly, daily, realtime/);
  });
});

describeEachDialect('enqueueDueSyncs', (db) => {
  const extra: Context[] = [];
  afterAll(async () => {
    await Promise.all(extra.map((c) => c.close()));
  });

  async function seedSync(ctx: Context, id: string, cadence: string, nextRun: number | null): Promise<void> {
    const now = Date.now();
    await seedDestination(ctx, {
      id: `dst_${id}`,
      name: `dest ${id}`,
      app_id: `app-${id}`,
      api_key: 'key',
      api_url: 'http://127.0.0.1:1',
      created_at: now,
    });
    await seedCohort(ctx, { id: `coh_${id}`, name: `cohort ${id}`, created_at: now });
    await seedSyncRow(ctx, {
      id,
      cohort_id: `coh_${id}`,
      destination_id: `dst_${id}`,
      cadence,
      next_run_at: nextRun,
      created_at: now,
    });
  }

  it('enqueues each due sync exactly once across concurrent callers and advances its schedule', async () => {
    const { ctx, url } = db();
    const now = Date.now();
    await seedSync(ctx, 'syn_hourly', 'hourly', now - 1000);
    await seedSync(ctx, 'syn_daily', 'daily', now - 5 * HOUR); // missed while down: one pull, not five
    await seedSync(ctx, 'syn_once', 'once', now - 10);
    await seedSync(ctx, 'syn_realtime', 'realtime', now);
    await seedSync(ctx, 'syn_future', 'hourly', now + HOUR);
    await seedSync(ctx, 'syn_manual', 'manual', null);

    const ctx2 = await openContext({ db: url, migrate: 'require' });
    extra.push(ctx2);
    const q1 = createJobQueue(ctx);
    const q2 = createJobQueue(ctx2);
    try {
      const results = await Promise.all([
        enqueueDueSyncs(ctx, q1, now),
        enqueueDueSyncs(ctx2, q2, now),
        enqueueDueSyncs(ctx, q1, now),
        enqueueDueSyncs(ctx2, q2, now),
      ]);
      const all = results.flatMap((r) => r.enqueued).sort();
      expect(all).toEqual(['syn_daily', 'syn_hourly', 'syn_once', 'syn_realtime']);

      const jobs = (await q1.list()).filter((j) => j.task === 'sync.run');
      expect(jobs.map((j) => (j.payload as { syncId: string }).syncId).sort()).toEqual(all);
      expect(jobs.every((j) => (j.payload as { trigger: string }).trigger === 'schedule')).toBe(true);

      const rows = await ctx.store.db.selectFrom('syncs').select(['id', 'next_run_at']).execute();
      const next = Object.fromEntries(rows.map((r) => [r.id, r.next_run_at]));
      expect(next.syn_hourly).toBe(now + HOUR);
      expect(next.syn_daily).toBe(now + 24 * HOUR);
      expect(next.syn_realtime).toBe(now + 24 * HOUR);
      expect(next.syn_once).toBeNull();
      expect(next.syn_future).toBe(now + HOUR);
      expect(next.syn_manual).toBeNull();

      // A later tick at the same instant finds nothing due: schedules live in the database.
      expect((await enqueueDueSyncs(ctx2, q2, now)).enqueued).toEqual([]);
    } finally {
      await q1.stop();
      await q2.stop();
    }
  });

  it('closes the runs whose process died (a lapsed lease), and only those', async () => {
    const { ctx } = db();
    const now = Date.now();
    // A sync has one run at work at a time: each run here is its own sync's.
    const syncOf = (runId: string) => runId.replace(/^run_/, 'syn_');
    for (const id of ['run_dead', 'run_alive', 'run_died_delivering', 'run_delivering'])
      await seedSync(ctx, syncOf(id), 'manual', null);
    const run = (id: string, applied: boolean, leaseUntil: number | null) => ({
      id,
      sync_id: syncOf(id),
      status: 'running',
      trigger: 'schedule',
      dry_run: 0,
      added: applied ? 2 : 0,
      started_at: now - 60_000,
      applied_at: applied ? now - 50_000 : null,
      lease_owner: leaseUntil === null ? null : `lease_${id}`,
      lease_until: leaseUntil,
    });
    await ctx.store.db
      .insertInto('runs')
      .values([
        run('run_dead', false, now - 1),
        run('run_alive', false, now + 5_000),
        run('run_died_delivering', true, now - 1),
        // Applied and handed to the job queue's deliveries: no process holds it.
        run('run_delivering', true, null),
      ] as never)
      .execute();
    await ctx.store.db.insertInto('staging').values({ run_id: 'run_dead', external_id: 'u1' }).execute();
    // The snapshot the dead run was staging, in its own table (PostgreSQL: reachable from any process).
    // The one that died after applying its diff may still have left its own.
    const stageOne = async (runId: string) => {
      const stage = ctx.store.engine.stageSnapshot(runId);
      await stage.add('u1');
      await stage.finish();
      return () => sql`${stagedIds({ runId, stagedAt: stage.stagedAt })}`.execute(ctx.store.db);
    };
    const readStaged = await stageOne('run_dead');
    const readLeftOver = await stageOne('run_died_delivering');
    expect((await readStaged()).rows).toHaveLength(1);
    expect((await readLeftOver()).rows).toHaveLength(1);

    expect(await closeAbandonedRuns(ctx, now)).toEqual({
      failed: ['run_dead'],
      finalized: ['run_died_delivering'],
      destinationIds: ['dst_syn_died_delivering'],
    });
    const dead = await getRunView(ctx, 'run_dead');
    expect(dead.status).toBe('failed');
    expect(dead.error).toMatch(/abandoned/);
    expect(dead.finished_at).toBe(now);
    // Its two changes are counted as delivered (no open ledger rows): the arithmetic of a pass that ended.
    expect(await getRunView(ctx, 'run_died_delivering')).toMatchObject({ status: 'completed', delivered: 2 });
    expect((await getRunView(ctx, 'run_alive')).status).toBe('running');
    expect((await getRunView(ctx, 'run_delivering')).status).toBe('running');
    const staged = await ctx.store.db
      .selectFrom('staging')
      .select('external_id')
      .where('run_id', '=', 'run_dead')
      .execute();
    expect(staged).toEqual([]);
    await expect(readStaged()).rejects.toThrow(/no such table|does not exist/);
    await expect(readLeftOver()).rejects.toThrow(/no such table|does not exist/);
    expect(await closeAbandonedRuns(ctx, now)).toEqual({ failed: [], finalized: [], destinationIds: [] });
    // Once its lease lapses too, the live one's turn comes.
    expect((await closeAbandonedRuns(ctx, now + 6_000)).failed).toEqual(['run_alive']);
  });
});
