import { expect, it } from 'vitest';
import { rejectRun, runSync } from '../../src/sync/run';
import { getRunView } from '../../src/sync/runs';
import { describeEachDialect } from '../helpers/db';
import { cohortSync, range, reimport, setupApp } from './setup';

describeEachDialect('guard, dry run and rejection tell the truth', (db) => {
  it('the guard weighs only users whose tag OneSignal confirmed: leaving users it never had are no loss', async () => {
    const { ctx } = db();
    // 4 users OneSignal knows, 6 it does not (they end not_found, never tagged).
    const known = range('gk', 0, 4);
    const { emu, dest } = await setupApp(ctx, { users: known });
    try {
      const { cohortId, sync, name } = await cohortSync(ctx, dest.id, [...known, ...range('ghost', 0, 6)]);
      const first = await runSync(ctx, sync.id, { deliver: 'inline' });
      expect(first).toMatchObject({ status: 'completed', delivered: 4, not_found: 6 });
      // The 6 unknown users leave: 6 removals, none of a confirmed tag. Before, 6 of 4 confirmed (150%) held it.
      await reimport(ctx, cohortId, known, name);
      const second = await runSync(ctx, sync.id, { deliver: 'inline' });
      expect(second.status).toBe('completed');
      expect(second.hold_reason).toBeNull();
    } finally {
      await emu.close();
    }
  });

  it('a dry run says that the real run would be held; a rejected run has nothing pending', async () => {
    const { ctx } = db();
    const known = range('dh', 0, 4);
    const { emu, dest } = await setupApp(ctx, { users: known });
    try {
      const { cohortId, sync, name } = await cohortSync(ctx, dest.id, known);
      await runSync(ctx, sync.id, { deliver: 'inline' });
      await reimport(ctx, cohortId, known.slice(0, 1), name); // 3 of 4 confirmed leave: 75% > 50%
      const dry = await runSync(ctx, sync.id, { dryRun: true });
      expect(dry.status).toBe('dry_run');
      expect(dry.hold_reason).toMatch(/^a real run would be held for approval: the run would remove 3 of 4 confirmed/);
      // The dry run changed nothing: the tags are all still there.
      expect(known.map((u) => emu.state.getUser(u)?.[sync.tag_key])).toEqual(['1', '1', '1', '1']);
      const held = await runSync(ctx, sync.id, { deliver: 'inline' });
      expect(held).toMatchObject({ status: 'held', pending: 3 });
      const rejected = await rejectRun(ctx, held.id);
      expect(rejected).toMatchObject({ status: 'rejected', pending: 0 });
      expect((await getRunView(ctx, held.id)).pending).toBe(0);
    } finally {
      await emu.close();
    }
  });
});
