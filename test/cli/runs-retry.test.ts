import { expect, it } from 'vitest';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { cli, cohortSync, range, setupApp } from '../sync/setup';

describeEachDialect('cli runs retry', (db) => {
  // Each spawn starts the CLI afresh; on a loaded machine that takes seconds.
  it("re-queues and delivers a run's failed users; refused with the reason when none failed", async () => {
    const { url, ctx } = db();
    const users = range('cr', 0, 5);
    const { emu, dest } = await setupApp(ctx, { users, emulator: { maxTagsPerUser: 1 } });
    try {
      // OneSignal refuses cr3 for good (its tag limit, reached by a tag set behind the sync's back).
      emu.state.setTags('cr3', { other_tool: 'x' });
      const { sync } = await cohortSync(ctx, dest.id, users);
      const run = await runSync(ctx, sync.id);
      expect(run).toMatchObject({ status: 'completed', failed: 1 });

      const show = await cli(['--db', url, 'runs', 'show', run.id]);
      expect(show.stdout).toContain(`ampsignal runs retry ${run.id}`);

      emu.setLimits({ maxTagsPerUser: 100 });
      const r = await cli(['--db', url, 'runs', 'retry', run.id, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        requeued: 1,
        run: { id: run.id, status: 'completed', delivered: 5, failed: 0 },
      });
      expect(emu.state.getUser('cr3')).toMatchObject({ [sync.tag_key]: '1' });

      const again = await cli(['--db', url, 'runs', 'retry', run.id]);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain('has no failed users to retry');
      expect(again.stdout).toBe('');
    } finally {
      await emu.close();
    }
  }, 120_000);
});
