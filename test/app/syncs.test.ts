import { expect, it } from 'vitest';
import { addSync, pauseSync, removeSync, resumeSync, showSync, startRun, updateSync } from '../../src/app/syncs';
import { importCohortFile } from '../../src/sync/cohorts';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';
import { setupApp, writeIds } from '../sync/setup';

describeEachDialect('app: syncs', (db) => {
  it('conflicts are refused with the existing id: same cohort twice, colliding tag keys, a segment name OneSignal has', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['s1', 's2'] });
    try {
      // Whitespace in a cohort id becomes _ in its tag key: "pu a" and "pu_a" would share one tag.
      const a = await importCohortFile(ctx, { file: writeIds(['s1']), name: 'Power users', id: 'pu_a' });
      const b = await importCohortFile(ctx, { file: writeIds(['s2']), name: 'Power Users', id: 'pu a' });
      const first = await addSync(ctx, { cohort_id: a.cohort_id, destination_id: dest.id, guard_threshold: 0.8 });
      expect(first).toMatchObject({ tag_key: 'amp_cohort_pu_a', guard_threshold: 0.8, cohort_name: 'Power users' });
      expect(first.segment_id).not.toBeNull();

      const twice = await caught(addSync(ctx, { cohort_id: a.cohort_id, destination_id: dest.id }));
      expect(twice.code).toBe('conflict');
      expect(twice.details?.existing_id).toBe(first.id);
      const collide = await caught(addSync(ctx, { cohort_id: b.cohort_id, destination_id: dest.id }));
      expect(collide.code).toBe('conflict');
      expect(collide.message).toContain(`"amp_cohort_pu_a"`);
      expect(collide.message).toContain(first.id);

      await removeSync(ctx, first.id);
      // The segment went with the sync; make one by hand with the cohort's name.
      const seg = await emu.state.segments().length;
      expect(seg).toBe(0);
      const c = await importCohortFile(ctx, { file: writeIds(['s1']), name: 'Taken name', id: 'taken' });
      const made = await addSync(ctx, { cohort_id: c.cohort_id, destination_id: dest.id });
      await removeSync(ctx, made.id); // deletes its segment…
      const d = await importCohortFile(ctx, { file: writeIds(['s2']), name: 'Taken name', id: 'taken_2' });
      const again = await addSync(ctx, { cohort_id: d.cohort_id, destination_id: dest.id });
      const e = await importCohortFile(ctx, { file: writeIds(['s2']), name: 'Taken name', id: 'taken_3' });
      const refused = await caught(addSync(ctx, { cohort_id: e.cohort_id, destination_id: dest.id }));
      expect(refused.code).toBe('conflict');
      expect(refused.message).toContain(`segment named "Taken name" (segment ${again.segment_id})`);
      expect(refused.details?.existing_id).toBe(again.segment_id);
      const reused = await addSync(ctx, {
        cohort_id: e.cohort_id,
        destination_id: dest.id,
        reuse_segment_id: again.segment_id!,
      });
      expect(reused.segment_id).toBe(again.segment_id);
      const renamed = await importCohortFile(ctx, { file: writeIds(['s1']), name: 'Taken name', id: 'taken_4' });
      const other = await addSync(ctx, {
        cohort_id: renamed.cohort_id,
        destination_id: dest.id,
        segment_name: 'Taken name (2)',
      });
      expect(emu.state.segments().map((s) => s.name)).toContain('Taken name (2)');
      expect(other.segment_error).toBeNull();
    } finally {
      await emu.close();
    }
  });

  it('update, pause and resume; a run started answers with its id', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['r1'] });
    try {
      const c = await importCohortFile(ctx, { file: writeIds(['r1']), name: 'Runs cohort' });
      const s = await addSync(ctx, { cohort_id: c.cohort_id, destination_id: dest.id });
      expect(await updateSync(ctx, s.id, { cadence: 'daily', guard_threshold: 0.3 })).toMatchObject({
        cadence: 'daily',
        guard_threshold: 0.3,
      });
      expect((await caught(updateSync(ctx, s.id, { guard_threshold: 0 }))).message).toContain('guard_threshold');
      expect(await pauseSync(ctx, s.id)).toMatchObject({ status: 'paused', next_run_at: null });
      const paused = await caught(startRun(ctx, s.id));
      expect(paused.message).toContain('sync resume');
      expect((await resumeSync(ctx, s.id)).status).toBe('active');
      const started = await startRun(ctx, s.id);
      expect(started.run_id).toMatch(/^run_/);
      expect(started).toMatchObject({ finished: true, run: { status: 'completed', delivered: 1 } });
      expect((await showSync(ctx, s.id)).last_run?.id).toBe(started.run_id);
    } finally {
      await emu.close();
    }
  });
});
