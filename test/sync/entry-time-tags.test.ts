import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { deliverDestination } from '../../src/sync/deliver';
import { applyMembershipDelta } from '../../src/sync/ledger';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { verifySync } from '../../src/sync/verify';
import { describeEachDialect } from '../helpers/db';
import { cli, reimport, setupApp, writeIds } from './setup';

const DAY_S = 86_400;

/** Waits until the wall clock is in a later second than `afterMs`, so a new entry time differs. */
async function nextSecond(afterMs: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= Math.floor(afterMs / 1000)) await sleep(50);
}

describeEachDialect('entry-time tag values (sync --tag-value entered_at)', (db) => {
  it('members carry the Unix time they entered; time_elapsed filters select by it; leaving deletes, re-entering sets a new time', async () => {
    const { ctx } = db();
    const { emu, dest, appId } = await setupApp(ctx, { users: ['u1', 'u2', 'u3'] });
    try {
      const { importCohortFile } = await import('../../src/sync/cohorts');
      const imp = await importCohortFile(ctx, { file: writeIds(['u1', 'u2']), name: 'Trial users' });
      const sync = await createSync(ctx, {
        cohortId: imp.cohort_id,
        destinationId: dest.id,
        tagValue: 'entered_at',
        // Two of three members leave below, which the default guard would hold.
        guardThreshold: 1,
      });
      expect(sync.tag_value).toBe('entered_at');
      // The segment is everyone carrying the tag, whatever time it holds.
      const [segment] = emu.state.segments(appId);
      expect(segment!.filters).toEqual([{ field: 'tag', key: sync.tag_key, relation: 'exists' }]);

      const before = Date.now();
      const first = await runSync(ctx, sync.id);
      expect(first).toMatchObject({ status: 'completed', delivered: 2 });
      const enteredU1 = Number(emu.state.getUser('u1', appId)![sync.tag_key]);
      expect(enteredU1).toBeGreaterThanOrEqual(Math.floor(before / 1000) - 1);
      expect(enteredU1).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));

      // u3 entered five days ago (a cohort webhook computed then).
      const fiveDaysAgo = Date.now() - 5 * DAY_S * 1000;
      await applyMembershipDelta(ctx, {
        cohortId: imp.cohort_id,
        inCohort: true,
        externalIds: ['u3'],
        sourceTs: fiveDaysAgo,
      });
      await deliverDestination(ctx, dest.id);
      expect(emu.state.getUser('u3', appId)![sync.tag_key]).toBe(String(Math.floor(fiveDaysAgo / 1000)));

      const inCohortOver3Days = [
        { field: 'tag', key: sync.tag_key, relation: 'time_elapsed_gt', value: String(3 * DAY_S) },
      ];
      const newerThan1Day = [{ field: 'tag', key: sync.tag_key, relation: 'time_elapsed_lt', value: String(DAY_S) }];
      expect(emu.state.segmentUsers(inCohortOver3Days, { appId })).toEqual(['u3']);
      expect(emu.state.segmentUsers(newerThan1Day, { appId }).sort()).toEqual(['u1', 'u2']);
      expect(emu.state.segmentUsers(segment!.id, { appId }).sort()).toEqual(['u1', 'u2', 'u3']);
      // Read-back verification expects each member's entry time, not "1".
      const verified = await verifySync(ctx, sync.id, { sample: 3 });
      expect(verified).toMatchObject({ status: 'completed', matched: 3, drifted: 0 });
      emu.state.setTags('u2', { [sync.tag_key]: '1' }, appId);
      const drifted = await verifySync(ctx, sync.id, { sample: 3 });
      expect(drifted.drift).toEqual([
        { external_id: 'u2', kind: 'tag_changed', expected: String(enteredU1), actual: '1' },
      ]);
      emu.state.setTags('u2', { [sync.tag_key]: String(enteredU1) }, appId);
      // Four days on, u1 and u2 have been members for more than three days too.
      const later = Date.now() + 4 * DAY_S * 1000;
      expect(emu.state.segmentUsers(inCohortOver3Days, { appId, nowMs: later }).sort()).toEqual(['u1', 'u2', 'u3']);

      // u1 and u3 leave: their tags are deleted.
      await reimport(ctx, imp.cohort_id, ['u2'], 'Trial users');
      expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', removed: 2, delivered: 2 });
      expect(emu.state.getUser('u1', appId)).toEqual({});
      expect(emu.state.getUser('u3', appId)).toEqual({});

      // u1 comes back: a new entry time, and u2's is untouched.
      await nextSecond(before);
      const back = Date.now();
      await reimport(ctx, imp.cohort_id, ['u1', 'u2'], 'Trial users');
      expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', added: 1, delivered: 1 });
      const reentered = Number(emu.state.getUser('u1', appId)![sync.tag_key]);
      expect(reentered).toBeGreaterThan(enteredU1);
      expect(reentered).toBeGreaterThanOrEqual(Math.floor(back / 1000));
      expect(Number(emu.state.getUser('u2', appId)![sync.tag_key])).toBe(enteredU1);
    } finally {
      await emu.close();
    }
  });

  it('by default a member’s tag is "1" and the segment filters on = "1"; a bad --tag-value is refused naming the choices', async () => {
    const { ctx } = db();
    const { emu, dest, appId } = await setupApp(ctx, { users: ['p1'] });
    try {
      const { importCohortFile } = await import('../../src/sync/cohorts');
      const imp = await importCohortFile(ctx, { file: writeIds(['p1']), name: 'Presence' });
      await expect(
        createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id, tagValue: 'entered' }),
      ).rejects.toThrow(/tag value must be one of presence, entered_at/);
      const sync = await createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id });
      expect(sync.tag_value).toBe('presence');
      expect(emu.state.segments(appId)[0]!.filters).toEqual([
        { field: 'tag', key: sync.tag_key, relation: '=', value: '1' },
      ]);
      await runSync(ctx, sync.id);
      expect(emu.state.getUser('p1', appId)).toEqual({ [sync.tag_key]: '1' });
    } finally {
      await emu.close();
    }
  });

  it('the CLI takes --tag-value and refuses anything else with exit code 2', async () => {
    const { url } = db();
    const bad = await cli([
      'sync',
      'create',
      '--cohort',
      'c',
      '--destination',
      'd',
      '--tag-value',
      'when',
      '--db',
      url,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--tag-value.*presence, entered_at|tag.?value.*presence, entered_at/i);
  });
});
