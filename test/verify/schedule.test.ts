import { afterAll, expect, it } from 'vitest';
import { listAlerts } from '../../src/app/alerts';
import type { OneSignalEmulator } from '../../src/emulators/onesignal/index';
import { evaluateAlerts } from '../../src/jobs/alerts';
import { dueVerifications, verifyTask } from '../../src/jobs/verify';
import { type Context, openContext } from '../../src/store';
import { runSync } from '../../src/sync/run';
import type { SyncRow } from '../../src/sync/syncs';
import { listVerifications } from '../../src/sync/verify';
import { cliScope } from '../cli/proc';
import { describeDialects } from '../helpers/db';
import { waitFor } from '../jobs/helpers';
import { cohortSync, range, setupApp } from '../sync/setup';

const scope = cliScope();
const emulators: OneSignalEmulator[] = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

const settings = {
  publicUrl: null,
  deadLetters: 100,
  budgetPercent: 80,
  realtimeSilenceMs: 86_400_000,
  driftPercent: 5,
};

describeDialects('daily read-back on the scheduler', (dialect) => {
  /** A fresh database whose one sync, of two users, has delivered to its emulated app. */
  async function withDeliveredSync(use: (ctx: Context, sync: SyncRow) => Promise<void>): Promise<void> {
    const ctx = await openContext({ db: await scope.freshDb(dialect), migrate: 'auto' });
    try {
      const { emu, dest } = await setupApp(ctx, { users: range('u', 0, 2) });
      emulators.push(emu);
      const { sync } = await cohortSync(ctx, dest.id, range('u', 0, 2));
      expect((await runSync(ctx, sync.id)).status).toBe('completed');
      await use(ctx, sync);
    } finally {
      await ctx.close();
    }
  }

  it('a worker verifies each delivered sync once a day with the small sample; low match rates alert as drift', async () => {
    const url = await scope.freshDb(dialect);
    const ctx = await openContext({ db: url, migrate: 'auto' });
    try {
      const { emu, dest } = await setupApp(ctx, { users: range('u', 0, 4) });
      emulators.push(emu);
      const { sync } = await cohortSync(ctx, dest.id, range('u', 0, 4));
      // Created but never run: nothing to read back yet.
      const idle = await cohortSync(ctx, dest.id, range('u', 0, 2));
      expect((await runSync(ctx, sync.id)).status).toBe('completed');
      expect((await dueVerifications(ctx, Date.now())).map((d) => d.syncId)).toEqual([sync.id]);
      // Half the sample drifted behind the sync's back.
      emu.state.deleteTag('u0', sync.tag_key);
      emu.state.deleteTag('u1', sync.tag_key);

      const w = scope.start(['--db', url, 'worker', '--json'], { AMPSIGNAL_VERIFY_SAMPLE: '4' });
      await w.started;
      const done = await waitFor(
        async () => (await listVerifications(ctx, sync.id)).find((v) => v.status === 'completed'),
        { what: 'the scheduled verification', timeoutMs: 60_000, intervalMs: 200 },
      );
      expect(done).toMatchObject({ trigger: 'schedule', sample_size: 4, checked: 4, matched: 2, drifted: 2 });
      expect(done.match_rate).toBe(0.5);
      // Done for the day: the next ticks enqueue nothing, and the never-run sync was never verified.
      expect(await dueVerifications(ctx, Date.now())).toEqual([]);
      expect(await dueVerifications(ctx, Date.now() + 25 * 3_600_000)).toHaveLength(1);
      expect(await listVerifications(ctx, idle.sync.id)).toEqual([]);
      w.child.kill('SIGTERM');
      expect((await w.exited).code).toBe(0);
      expect(await listVerifications(ctx, sync.id)).toHaveLength(1);

      await evaluateAlerts(ctx, { settings });
      const drift = (await listAlerts(ctx)).find((a) => a.kind === 'drift');
      expect(drift).toMatchObject({ condition: `drift:${sync.id}`, status: 'open' });
      expect(drift!.message).toContain('50%');
    } finally {
      await ctx.close();
    }
  }, 120_000);

  it('a verification left running by a dead process (lease lapsed) no longer holds the daily verify back after an hour', async () => {
    await withDeliveredSync(async (ctx, sync) => {
      const now = Date.now();
      const row = {
        id: 'ver_dead',
        sync_id: sync.id,
        status: 'running',
        trigger: 'schedule',
        sample_size: 20,
        checked: 0,
        matched: 0,
        drifted: 0,
        skipped: 0,
        repaired: 0,
        match_rate: null,
        drift: null,
        error: null,
        started_at: now - 2 * 3_600_000,
        finished_at: null,
        lease_until: now + 8_000,
      };
      await ctx.store.db.insertInto('verifications').values(row).execute();
      // Still renewed: it is running somewhere.
      expect(await dueVerifications(ctx, now)).toEqual([]);
      await ctx.store.db
        .updateTable('verifications')
        .set({ lease_until: now - 1 })
        .execute();
      expect((await dueVerifications(ctx, now)).map((d) => d.syncId)).toEqual([sync.id]);
      expect((await listVerifications(ctx, sync.id))[0]!.status).toBe('abandoned');
    });
  });

  it('a verification cancelled by a stopping worker is recorded failed and its job ends without an error', async () => {
    await withDeliveredSync(async (ctx, sync) => {
      const stopping = new AbortController();
      stopping.abort(new Error('worker stopping'));
      // An error here is what the job queue logs as a failed job at every shutdown.
      await expect(
        verifyTask(ctx)({ syncId: sync.id }, { signal: stopping.signal, workerId: 'w', jobId: '1' }),
      ).resolves.toBeUndefined();
      expect(await listVerifications(ctx, sync.id)).toEqual([
        expect.objectContaining({ status: 'failed', error: expect.stringMatching(/cancelled/) }),
      ]);
    });
  });
});
