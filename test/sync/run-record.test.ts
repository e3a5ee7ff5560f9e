import { sql } from 'kysely';
import { expect, it } from 'vitest';
import type { Context } from '../../src/store';
import * as oneRunAtWork from '../../src/store/migrations/015_one_run_at_work';
import {
  addDeliveryCounts,
  closeAbandonedRuns,
  finalizeRun,
  openRun,
  recordApplied,
  recordHeld,
  rejectHeldRun,
  releaseRunLease,
  reopenHeldRun,
} from '../../src/sync/run-record';
import { getRunView } from '../../src/sync/runs';
import { describeEachDialect } from '../helpers/db';
import { seedLedger, seedSyncWithParts } from '../helpers/seed';

/** Ledger rows the run changed, with their outcome (null = not sent yet). */
async function ledgerOf(ctx: Context, syncId: string, runId: string, outcomes: Array<string | null>): Promise<void> {
  await seedLedger(
    ctx,
    outcomes.map((outcome, i) => ({
      sync_id: syncId,
      destination_id: `dst_${syncId}`,
      external_id: `u${i}`,
      desired: 1,
      confirmed: outcome === 'delivered' ? 1 : 0,
      run_id: runId,
      outcome,
    })),
  );
}

describeEachDialect('the run record (the one writer of runs)', (db) => {
  it('opens a leased running run that becomes the sync’s last run', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_open');
    const run = await openRun(ctx, { syncId: 'syn_open', trigger: 'manual', dryRun: false });
    const row = await ctx.store.db.selectFrom('runs').selectAll().where('id', '=', run.runId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'running', lease_owner: run.lease, applied_at: null });
    expect(Number(row.lease_until)).toBeGreaterThan(Date.now());
    const sync = await ctx.store.db.selectFrom('syncs').select('last_run_id').where('id', '=', 'syn_open').execute();
    expect(sync[0]!.last_run_id).toBe(run.runId);
  });

  it('a sync has one run at work: of eight racing opens one runs, the rest are refused naming it; dry runs may overlap', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_race');
    const open = () => openRun(ctx, { syncId: 'syn_race', trigger: 'manual', dryRun: false });
    const tries = await Promise.allSettled(Array.from({ length: 8 }, open));
    const opened = tries.flatMap((t) => (t.status === 'fulfilled' ? [t.value] : []));
    expect(opened).toHaveLength(1);
    for (const t of tries.filter((x) => x.status === 'rejected'))
      expect(t.reason).toMatchObject({
        code: 'conflict',
        message: expect.stringContaining(`already has a run at work (${opened[0]!.runId}, manual`),
      });
    const dry = await openRun(ctx, { syncId: 'syn_race', trigger: 'manual', dryRun: true });
    expect(dry.runId).not.toBe(opened[0]!.runId);
    // Once the run's diff is applied its lease is released: the next run opens.
    await releaseRunLease(ctx, opened[0]!);
    await expect(open()).resolves.toMatchObject({ runId: expect.stringMatching(/^run_/) });
  });

  it('a run whose process died does not block the next: its lapsed lease is closed first', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_dead');
    const dead = await openRun(ctx, { syncId: 'syn_dead', trigger: 'schedule', dryRun: false });
    await ctx.store.db
      .updateTable('runs')
      .set({ lease_until: Date.now() - 1 })
      .where('id', '=', dead.runId)
      .execute();
    const next = await openRun(ctx, { syncId: 'syn_dead', trigger: 'manual', dryRun: false });
    expect(await getRunView(ctx, dead.runId)).toMatchObject({ status: 'failed', error: /abandoned/ });
    expect(await getRunView(ctx, next.runId)).toMatchObject({ status: 'running' });
  });

  it('upgrading a database where two runs of a sync were at work leaves the newest leased, the older to recovery', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_upgrade');
    await sql`DROP INDEX runs_one_at_work`.execute(ctx.store.db);
    const older = await openRun(ctx, { syncId: 'syn_upgrade', trigger: 'schedule', dryRun: false });
    const newer = await openRun(ctx, { syncId: 'syn_upgrade', trigger: 'manual', dryRun: false });
    await ctx.store.db
      .updateTable('runs')
      .set({ started_at: older.startedAt - 1_000 })
      .where('id', '=', older.runId)
      .execute();
    await oneRunAtWork.up(ctx.store.db, ctx.store.dialect);
    const owners = await ctx.store.db
      .selectFrom('runs')
      .select(['id', 'lease_owner'])
      .where('sync_id', '=', 'syn_upgrade')
      .execute();
    expect(owners).toEqual(
      expect.arrayContaining([
        { id: older.runId, lease_owner: null },
        { id: newer.runId, lease_owner: newer.lease },
      ]),
    );
    await expect(openRun(ctx, { syncId: 'syn_upgrade', trigger: 'manual', dryRun: false })).rejects.toMatchObject({
      code: 'conflict',
    });
  });

  it('refuses to record a diff on a run another process closed after its lease lapsed', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_lapsed');
    const run = await openRun(ctx, { syncId: 'syn_lapsed', trigger: 'manual', dryRun: false });
    expect((await closeAbandonedRuns(ctx, Date.now() + 60_000)).failed).toContain(run.runId);
    const apply = ctx.store.db
      .transaction()
      .execute((trx) => recordApplied(trx, run, { members: 3, adds: 3, removes: 0 }));
    await expect(apply).rejects.toMatchObject({ code: 'run_state', message: expect.stringMatching(/lease lapsed/) });
    const hold = ctx.store.db
      .transaction()
      .execute((trx) =>
        recordHeld(trx, run, { members: 0, adds: 0, removes: 3, reason: 'r', sample: {}, sourceTs: 1 }),
      );
    await expect(hold).rejects.toMatchObject({ code: 'run_state' });
    expect(await getRunView(ctx, run.runId)).toMatchObject({ status: 'failed', added: 0, error: /abandoned/ });
  });

  it('finalize: a failure ends a running run with its settled counts and the ledger’s pending; an ended run keeps what it says', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_fail');
    const run = await openRun(ctx, { syncId: 'syn_fail', trigger: 'manual', dryRun: false });
    await ctx.store.db.transaction().execute((trx) => recordApplied(trx, run, { members: 4, adds: 4, removes: 0 }));
    await ledgerOf(ctx, 'syn_fail', run.runId, ['delivered', 'not_found', 'failed', null]);
    // What the delivery adds with the outcomes it writes.
    await ctx.store.db
      .transaction()
      .execute((trx) => addDeliveryCounts(trx, new Map([[run.runId, { requests: 3, notFound: 1, failed: 1 }]])));
    await finalizeRun(ctx, run.runId, { failed: 'destination paused' });
    const failed = await getRunView(ctx, run.runId);
    expect(failed).toMatchObject({
      status: 'failed',
      error: 'destination paused',
      delivered: 1,
      not_found: 1,
      failed: 1,
      pending: 1,
      requests: 3,
    });
    expect(failed.finished_at).not.toBeNull();
    await finalizeRun(ctx, run.runId, { failed: 'a second failure' });
    await finalizeRun(ctx, run.runId, { force: true });
    expect(await getRunView(ctx, run.runId)).toEqual(failed);
  });

  it('finalize: an applied run completes once nothing is pending, or at once when forced', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_done');
    const run = await openRun(ctx, { syncId: 'syn_done', trigger: 'manual', dryRun: false });
    await ctx.store.db.transaction().execute((trx) => recordApplied(trx, run, { members: 2, adds: 2, removes: 0 }));
    await ledgerOf(ctx, 'syn_done', run.runId, ['delivered', null]);
    await finalizeRun(ctx, run.runId);
    expect(await getRunView(ctx, run.runId)).toMatchObject({ status: 'running', delivered: 1, pending: 1 });
    await finalizeRun(ctx, run.runId, { force: true });
    expect(await getRunView(ctx, run.runId)).toMatchObject({ status: 'completed', delivered: 1, pending: 1 });
    await ctx.store.db.updateTable('ledger').set({ outcome: 'delivered', confirmed: 1 }).execute();
    await finalizeRun(ctx, run.runId);
    expect(await getRunView(ctx, run.runId)).toMatchObject({ status: 'completed', delivered: 2, pending: 0 });
  });

  it('only a held run can be approved or rejected, and the message says what the run is', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_held');
    const run = await openRun(ctx, { syncId: 'syn_held', trigger: 'manual', dryRun: false });
    await expect(reopenHeldRun(ctx, run.runId)).rejects.toThrow(/is running; only a held run can be approved/);
    await ctx.store.db
      .transaction()
      .execute((trx) =>
        recordHeld(trx, run, { members: 0, adds: 0, removes: 5, reason: 'empty snapshot', sample: {}, sourceTs: 7 }),
      );
    expect(await getRunView(ctx, run.runId)).toMatchObject({
      status: 'held',
      pending: 5,
      hold_reason: 'empty snapshot',
    });
    await rejectHeldRun(ctx, run.runId);
    await expect(rejectHeldRun(ctx, run.runId)).rejects.toThrow(/is rejected; only a held run can be rejected/);
    await expect(reopenHeldRun(ctx, 'run_nope')).rejects.toMatchObject({ code: 'not_found' });
  });
});
