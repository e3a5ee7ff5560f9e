import { afterAll, expect, it } from 'vitest';
import type { OneSignalEmulator } from '../../src/emulators/onesignal/index';
import { runSync } from '../../src/sync/run';
import { verifySync } from '../../src/sync/verify';
import { runCli } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';
import { cohortSync, range, reimport, setupApp } from '../sync/setup';

const emulators: OneSignalEmulator[] = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

const byUser = (drift: Array<{ external_id: string; kind: string }>) =>
  Object.fromEntries(drift.map((d) => [d.external_id, d.kind]));

describeEachDialect('sync verify (read-back)', (db) => {
  it('finds exactly the drift injected in the emulator, paced at 1 read/s; --repair fixes it at the next delivery', async () => {
    const { ctx, url } = db();
    // OneSignal users u0..u7; "ghost" is in the cohort but not in OneSignal, and the emulator
    // answers 202 to its update without applying it (as OneSignal's API description allows).
    const { emu, dest, appId } = await setupApp(ctx, {
      users: range('u', 0, 8),
      emulator: { acceptUnknownUsers: true },
    });
    emulators.push(emu);
    const members = [...range('u', 0, 7), 'ghost'];
    const { sync, cohortId, name } = await cohortSync(ctx, dest.id, members);
    const tag = sync.tag_key;
    expect((await runSync(ctx, sync.id)).status).toBe('completed');
    // u6 leaves: its tag is deleted and the ledger confirms the removal.
    await reimport(
      ctx,
      cohortId,
      members.filter((m) => m !== 'u6'),
      name,
    );
    expect((await runSync(ctx, sync.id)).status).toBe('completed');
    expect(emu.state.getUser('u6')).toEqual({});
    expect(emu.state.stats().unknownAccepted).toBeGreaterThan(0);

    // Drift behind the sync's back.
    emu.state.deleteTag('u1', tag); // tag missing
    emu.state.setTags('u2', { [tag]: '0' }); // tag changed
    emu.state.deleteUser('u3'); // user gone
    emu.state.setTags('u6', { [tag]: '1' }); // tag present though left
    emu.state.setTags('u7', { [tag]: '1' }); // never in the cohort: not the ledger's, not sampled
    const injected = {
      u1: 'tag_missing',
      u2: 'tag_changed',
      u3: 'user_gone',
      u6: 'tag_present_after_leaving',
      ghost: 'user_gone',
    };

    const viewsBefore = emu.state.stats().byApp[appId]!;
    const found = await verifySync(ctx, sync.id, { sample: 100 });
    expect(found).toMatchObject({ status: 'completed', sample_size: 100, checked: 8, drifted: 5, matched: 3 });
    expect(found.match_rate).toBeCloseTo(3 / 8);
    expect(byUser(found.drift)).toEqual(injected);
    expect(found.drift.find((d) => d.external_id === 'u2')).toEqual({
      external_id: 'u2',
      kind: 'tag_changed',
      expected: '1',
      actual: '0',
    });
    // Eight reads within OneSignal's 1 request per second per app: none refused.
    const viewsAfter = emu.state.stats().byApp[appId]!;
    expect(viewsAfter.requests - viewsBefore.requests).toBe(8);
    expect(viewsAfter.rateLimited).toBe(viewsBefore.rateLimited);
    // Without --repair nothing is pending, and the drift alert has its rate.
    const pending = () =>
      ctx.store.db
        .selectFrom('ledger')
        .select('external_id')
        .where('sync_id', '=', sync.id)
        .whereRef('desired', '<>', 'confirmed')
        .orderBy('external_id')
        .execute()
        .then((rows) => rows.map((r) => r.external_id));
    expect(await pending()).toEqual([]);
    const row = await ctx.store.db.selectFrom('syncs').selectAll().where('id', '=', sync.id).executeTakeFirstOrThrow();
    expect(Number(row.verify_match_rate)).toBeCloseTo(3 / 8);

    // The CLI, with --repair: the same drift, now marked pending.
    const cli = await runCli(
      ['--db', url, 'sync', 'verify', sync.id, '--sample', '100', '--repair', '--json'],
      {},
      60_000,
    );
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    const repaired = JSON.parse(cli.stdout);
    expect(byUser(repaired.drift)).toEqual(injected);
    expect(repaired.repaired).toBe(5);
    expect(await pending()).toEqual(['ghost', 'u1', 'u2', 'u3', 'u6']);

    // The next delivery fixes what can be fixed: the tags; the gone users end not_found
    // (the ghost's update is again accepted and dropped).
    emu.setBehaviour({ acceptUnknownUsers: false });
    const next = await runSync(ctx, sync.id);
    expect(next.status).toBe('completed');
    expect(emu.state.getUser('u1')).toEqual({ [tag]: '1' });
    expect(emu.state.getUser('u2')).toEqual({ [tag]: '1' });
    expect(emu.state.getUser('u6')).toEqual({});
    const notFound = await ctx.store.db
      .selectFrom('ledger')
      .select(['external_id', 'outcome'])
      .where('sync_id', '=', sync.id)
      .where('outcome', '=', 'not_found')
      .orderBy('external_id')
      .execute();
    expect(notFound.map((r) => r.external_id)).toEqual(['ghost', 'u3']);

    const after = await verifySync(ctx, sync.id, { sample: 100 });
    expect(after).toMatchObject({ status: 'completed', checked: 6, matched: 6, drifted: 0, match_rate: 1 });
  }, 120_000);

  it('refuses a bad sample and an unknown sync with one line and exit 2', async () => {
    const { url } = db();
    for (const [args, msg] of [
      [['--sample', '0'], /--sample: must be from 1 to 10000/],
      [['--sample', 'lots'], /--sample: must be a whole number/],
    ] as const) {
      const r = await runCli(['--db', url, 'sync', 'verify', 'syn_x', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    const unknown = await runCli(['--db', url, 'sync', 'verify', 'syn_nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/sync syn_nope not found/);
  });
});
