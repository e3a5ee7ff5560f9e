import { expect, it } from 'vitest';
import { approve, countRetryable, listRuns, retryFailed, showRun } from '../../src/app/runs';
import { pauseSync, resumeSync } from '../../src/app/syncs';
import { createJobQueue } from '../../src/jobs';
import { startWorker } from '../../src/jobs/runtime';
import { pageRunRecords } from '../../src/sync/record-reads';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';
import { waitFor } from '../jobs/helpers';
import { addsUp, cohortSync, range, setupApp } from '../sync/setup';

/**
 * A run whose users OneSignal refuses for good (a terminal 4xx: the app's tag limit, reached
 * by tags set behind the sync's back), then `runs retry` once the cause is fixed.
 */
async function runWithFailures(ctx: Parameters<typeof runSync>[0]) {
  const users = range('r', 0, 10);
  const { emu, dest } = await setupApp(ctx, { users, emulator: { maxTagsPerUser: 1 } });
  for (const u of ['r1', 'r4', 'r7']) emu.state.setTags(u, { other_tool: 'x' });
  const { sync } = await cohortSync(ctx, dest.id, users);
  const run = await runSync(ctx, sync.id);
  expect(run).toMatchObject({ status: 'completed', added: 10, delivered: 7, failed: 3, pending: 0 });
  return { emu, dest, sync, run };
}

describeEachDialect('app: runs', (db) => {
  it('retry failed: while the cause stands they fail again; once fixed, they are delivered', async () => {
    const { ctx } = db();
    const { emu, sync, run } = await runWithFailures(ctx);
    try {
      expect(await countRetryable(ctx, run.id)).toBe(3);
      // The cause still stands: the three are sent again and fail again, nothing is lost.
      const again = await retryFailed(ctx, run.id);
      expect(again.requeued).toBe(3);
      expect(again.run).toMatchObject({ status: 'completed', delivered: 7, failed: 3, pending: 0 });
      expect(addsUp(again.run)).toBe(true);

      emu.setLimits({ maxTagsPerUser: 100 });
      await pauseSync(ctx, sync.id);
      const paused = await caught(retryFailed(ctx, run.id));
      expect(paused).toMatchObject({ code: 'run_state' });
      expect(paused.message).toContain('paused');
      await resumeSync(ctx, sync.id);

      const before = emu.state.stats().requests;
      const r = await retryFailed(ctx, run.id);
      expect(r.requeued).toBe(3);
      expect(r.run).toMatchObject({ id: run.id, status: 'completed', delivered: 10, failed: 0, pending: 0 });
      expect(addsUp(r.run)).toBe(true);
      expect(emu.state.stats().requests - before).toBe(3);
      for (const u of ['r1', 'r4', 'r7']) expect(emu.state.getUser(u)).toMatchObject({ [sync.tag_key]: '1' });
      // The history keeps both answers: the refusals, then the deliveries.
      const recs = (await pageRunRecords(ctx, run.id, {})).records.filter((x) => x.external_id === 'r4');
      expect(recs.map((x) => x.outcome)).toEqual(['failed', 'failed', 'delivered']);

      const none = await caught(retryFailed(ctx, run.id));
      expect(none).toMatchObject({ code: 'run_state' });
      expect(none.message).toContain('no failed users');
      expect(await countRetryable(ctx, run.id)).toBe(0);
      expect((await listRuns(ctx, { sync: sync.id })).map((x) => x.id)).toEqual([run.id]);
    } finally {
      await emu.close();
    }
  });

  it('retry is refused for a run that is not finished, held, or unknown', async () => {
    const { ctx } = db();
    const users = range('h', 0, 10);
    const { emu, dest } = await setupApp(ctx, { users });
    try {
      const { sync } = await cohortSync(ctx, dest.id, users);
      const dry = await runSync(ctx, sync.id, { dryRun: true });
      expect((await caught(retryFailed(ctx, dry.id))).message).toContain('only a finished run');
      await ctx.store.db.updateTable('runs').set({ status: 'running' }).where('id', '=', dry.id).execute();
      expect((await caught(retryFailed(ctx, dry.id))).message).toContain('still running');
      expect((await caught(retryFailed(ctx, 'run_nope'))).code).toBe('not_found');
      expect((await caught(listRuns(ctx, { sync: 'syn_nope' }))).code).toBe('not_found');
      expect((await caught(listRuns(ctx, { limit: 0 }))).code).toBe('invalid_input');
      expect((await caught(approve(ctx, dry.id))).code).toBe('run_state');
    } finally {
      await emu.close();
    }
  });

  it('with a job queue, the retried users are delivered by the destination queue', async () => {
    const { ctx } = db();
    const { emu, sync, run } = await runWithFailures(ctx);
    const jobs = createJobQueue(ctx, { sqlite: { pollMs: 50 }, graphile: { pollMs: 200 } });
    try {
      await startWorker(ctx, { concurrency: 2, jobs });
      emu.setLimits({ maxTagsPerUser: 100 });
      const r = await retryFailed(ctx, run.id, { jobs });
      expect(r.requeued).toBe(3);
      expect(r.run.status).toBe('running');
      const done = await waitFor(
        async () => {
          const v = await showRun(ctx, run.id);
          return v.status === 'completed' ? v : null;
        },
        { what: 'the retried run to complete', timeoutMs: 30_000 },
      );
      expect(done).toMatchObject({ delivered: 10, failed: 0, pending: 0 });
      expect(emu.state.getUser('r7')).toMatchObject({ [sync.tag_key]: '1' });
    } finally {
      await jobs.stop();
      await emu.close();
    }
  });
});
