import { afterAll, expect, it } from 'vitest';
import { resumeDestination } from '../../src/app/destinations';
import { getDestination } from '../../src/connectors/onesignal/destinations';
import { sqliteHandleOf } from '../../src/store/dialect/sqlite';
import { importCohortFile } from '../../src/sync/cohorts';
import { deliverDestination } from '../../src/sync/deliver';
import { applyMembershipDelta } from '../../src/sync/ledger';
import { pageRunRecords } from '../../src/sync/record-reads';
import { approveRun, rejectRun, runSync } from '../../src/sync/run';
import { getRunView } from '../../src/sync/runs';
import { createSync, deleteSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { waitFor } from '../jobs/helpers';
import { addsUp, cohortSync, range, reimport, setupApp, writeIds } from './setup';

const emulators: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

describeEachDialect('sync engine', (db) => {
  it('first sync adds tags; second sync after churn sends exactly the difference', async () => {
    const { ctx } = db();
    const members = range('u', 0, 200);
    const unknown = range('ghost', 0, 10);
    const { emu, dest } = await setupApp(ctx, { users: range('u', 0, 300) });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, [...members, ...unknown]);
    expect(sync.tag_key).toBe(`amp_cohort_${cohortId}`);
    expect(sync.segment_id).toBeTruthy();

    const r1 = await runSync(ctx, sync.id);
    expect(r1).toMatchObject({
      status: 'completed',
      members: 210,
      added: 210,
      removed: 0,
      unchanged: 0,
      delivered: 200,
      not_found: 10,
      failed: 0,
      pending: 0,
    });
    expect(r1.requests).toBe(210);
    expect(addsUp(r1)).toBe(true);
    expect(emu.state.getUser('u5')).toMatchObject({ [sync.tag_key]: '1' });
    expect(emu.state.getUser('ghost1')).toBeUndefined();
    const notFound = (await pageRunRecords(ctx, r1.id, { outcome: 'not_found' })).records;
    expect(notFound.map((r) => r.external_id)).toContain('ghost0');
    expect(notFound).toHaveLength(10);

    // 20 leave, 30 join (u200..u229 exist in OneSignal)
    const next = [...range('u', 20, 230)];
    await reimport(ctx, cohortId, next);
    const before = emu.state.stats().requests;
    const r2 = await runSync(ctx, sync.id);
    // The 10 ghosts leave too: a removal of a user OneSignal never knew stays not_found and costs no request.
    expect(r2).toMatchObject({
      status: 'completed',
      members: 210,
      added: 30,
      removed: 30,
      delivered: 50,
      not_found: 10,
      failed: 0,
      pending: 0,
    });
    expect(r2.unchanged).toBe(180);
    expect(emu.state.stats().requests - before).toBe(50);
    expect(emu.state.getUser('u3')?.[sync.tag_key]).toBeUndefined();
    expect(emu.state.getUser('u225')).toMatchObject({ [sync.tag_key]: '1' });
    expect(addsUp(r2)).toBe(true);

    // Nothing changed: nothing is sent.
    const r3 = await runSync(ctx, sync.id);
    expect(r3).toMatchObject({ status: 'completed', added: 0, removed: 0, unchanged: 210, requests: 0 });
  });

  it('counts blank/anonymous rows, duplicates and padded ids', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: range('a', 0, 10) });
    emulators.push(emu);
    const file = writeIds(['a1', ' a2 ', '', 'a1', 'a3', '   ', 'a4']);
    const imp = await importCohortFile(ctx, { file, name: 'anon' });
    expect(imp).toMatchObject({ members: 4, blank: 2, duplicates: 1, trimmed: 1 });
    const sync = await createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id });
    const r = await runSync(ctx, sync.id);
    expect(r).toMatchObject({ status: 'completed', members: 4, added: 4, skipped_anonymous: 2, delivered: 4 });
    expect(emu.state.getUser('a2')).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('coalesces: a user entering 3 cohorts costs one request', async () => {
    const { ctx } = db();
    const users = range('c', 0, 50);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const syncs = [];
    for (let i = 0; i < 3; i++) {
      const imp = await importCohortFile(ctx, { file: writeIds(users), name: `co${i}` });
      // Deliveries are left to one pass below, as the jobs layer does.
      syncs.push(await createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id }));
    }
    const before = emu.state.stats().requests;
    const runs = [];
    for (const s of syncs) runs.push(await runSync(ctx, s.id, { deliver: 'enqueue' }));
    const { deliverDestination } = await import('../../src/sync/deliver');
    const d = await deliverDestination(ctx, dest.id);
    expect(d).toMatchObject({ requests: 50, delivered: 150, pending: 0 });
    expect(emu.state.stats().requests - before).toBe(50);
    const tags = emu.state.getUser('c7')!;
    for (const s of syncs) expect(tags[s.tag_key]).toBe('1');
    for (const r of runs)
      expect(await getRunView(ctx, r.id)).toMatchObject({ status: 'completed', delivered: 50, pending: 0 });
  });

  it('at the tag budget, deletes go first, then adds', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, {
      users: ['t1', 'x1', 'x2'],
      maxTags: 2,
      emulator: { maxTagsPerUser: 2 },
    });
    emulators.push(emu);
    const a = await cohortSync(ctx, dest.id, ['t1', 'x1', 'x2']);
    const b = await cohortSync(ctx, dest.id, ['t1']);
    await runSync(ctx, a.sync.id, { deliver: 'enqueue' });
    await runSync(ctx, b.sync.id);
    expect(Object.keys(emu.state.getUser('t1')!)).toHaveLength(2);
    // t1 leaves a, joins c: at the budget (2), so the delete must land before the add.
    const c = await cohortSync(ctx, dest.id, ['t1']);
    await reimport(ctx, a.cohortId, ['x1', 'x2']);
    await runSync(ctx, a.sync.id, { deliver: 'enqueue' });
    const before = emu.state.stats().requests;
    const r = await runSync(ctx, c.sync.id);
    expect(r).toMatchObject({ status: 'completed', delivered: 1, failed: 0 });
    expect(emu.state.stats().requests - before).toBe(2);
    const tags = emu.state.getUser('t1')!;
    expect(tags[a.sync.tag_key]).toBeUndefined();
    expect(tags[b.sync.tag_key]).toBe('1');
    expect(tags[c.sync.tag_key]).toBe('1');
  });

  it('with faults everything still ends delivered and counters add up', async () => {
    const { ctx } = db();
    const users = range('f', 0, 300);
    const { emu, dest } = await setupApp(ctx, { users, emulator: { faults: { errorRate: 0.2, dropRate: 0.05 } } });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    const r = await runSync(ctx, sync.id);
    expect(r).toMatchObject({ status: 'completed', added: 300, delivered: 300, failed: 0, pending: 0 });
    expect(r.requests).toBeGreaterThan(300);
    expect(addsUp(r)).toBe(true);
    for (const u of ['f0', 'f150', 'f299']) expect(emu.state.getUser(u)).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('a wrong key pauses the destination, delivers nothing and fails the run', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['k1', 'k2'], apiKey: 'wrong-key' });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, ['k1', 'k2']);
    const r = await runSync(ctx, sync.id);
    expect(r.status).toBe('failed');
    expect(r).toMatchObject({ delivered: 0, pending: 2 });
    expect(r.error).toMatch(/./);
    const d = await getDestination(ctx, dest.id);
    expect(d.status).toBe('paused');
    expect(emu.state.getUser('k1')).toEqual({});
    const again = await runSync(ctx, sync.id);
    expect(again.status).toBe('failed');
    expect(again.error).toMatch(/is paused.*destination resume/);
    await resumeDestination(ctx, dest.id);
  });

  it('a terminal 4xx fails the record with the vendor text', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['m1'], maxTags: 100, emulator: { maxTagsPerUser: 1 } });
    emulators.push(emu);
    const a = await cohortSync(ctx, dest.id, ['m1']);
    const b = await cohortSync(ctx, dest.id, ['m1']);
    await runSync(ctx, a.sync.id);
    const r = await runSync(ctx, b.sync.id);
    expect(r).toMatchObject({ status: 'completed', failed: 1, delivered: 0, pending: 0 });
    const recs = (await pageRunRecords(ctx, r.id, { outcome: 'failed' })).records;
    expect(recs[0]!.message).toMatch(/tag|limit/i);
  });

  it('guard: a large removal is held; approve applies it, reject discards it; empty snapshot always held', async () => {
    const { ctx } = db();
    const users = range('g', 0, 40);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, users);
    await runSync(ctx, sync.id);
    await reimport(ctx, cohortId, range('g', 0, 10));
    const held = await runSync(ctx, sync.id);
    expect(held).toMatchObject({ status: 'held', removed: 30, added: 0, delivered: 0, pending: 30 });
    expect(held.hold_reason).toMatch(/30 of 40/);
    expect((held.sample as { removes: string[] }).removes).toHaveLength(10);
    expect(emu.state.getUser('g30')).toMatchObject({ [sync.tag_key]: '1' });
    const rejected = await rejectRun(ctx, held.id);
    expect(rejected.status).toBe('rejected');
    expect(emu.state.getUser('g30')).toMatchObject({ [sync.tag_key]: '1' });
    await expect(rejectRun(ctx, held.id)).rejects.toMatchObject({ code: 'run_state' });

    const held2 = await runSync(ctx, sync.id);
    expect(held2.status).toBe('held');
    // Imported again before anyone approves: approve still applies the snapshot that was reviewed.
    await reimport(ctx, cohortId, range('g', 0, 40));
    const approved = await approveRun(ctx, held2.id);
    expect(approved).toMatchObject({ status: 'completed', members: 10, removed: 30, delivered: 30, pending: 0 });
    expect(emu.state.getUser('g30')?.[sync.tag_key]).toBeUndefined();
    expect(addsUp(approved)).toBe(true);
    // The next run reads the new import and puts them back.
    expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', members: 40, added: 30, delivered: 30 });

    await reimport(ctx, cohortId, []);
    const empty = await runSync(ctx, sync.id);
    expect(empty.status).toBe('held');
    expect(empty.hold_reason).toMatch(/empty/);
  });

  it('a 150,000-member import (the sorter spills to helper threads) keeps each id once and diffs exactly', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx);
    emulators.push(emu);
    // File order is not key order, and 500 ids are repeated.
    const ids = range('big', 0, 150_000).map((_, i) => `big${(i * 7919) % 150_000}`);
    const cacheBefore = sqliteHandleOf(ctx.store)?.pragma('cache_size', { simple: true });
    const imp = await importCohortFile(ctx, { file: writeIds([...ids, ...ids.slice(0, 500)]), name: 'Big' });
    expect(imp).toMatchObject({ members: 150_000, duplicates: 500 });
    // The sorted copy shrinks the page cache for its own statement only.
    const h = sqliteHandleOf(ctx.store);
    if (h) expect(h.pragma('cache_size', { simple: true })).toBe(cacheBefore);
    const sync = await createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id });
    const dry = await runSync(ctx, sync.id, { dryRun: true });
    expect(dry).toMatchObject({ status: 'dry_run', members: 150_000, added: 150_000, unchanged: 0 });
    expect((dry.sample as { adds: string[] }).adds).toEqual([...ids].sort().slice(0, 10));
    const stored = await ctx.store.db
      .selectFrom('cohort_members')
      .select('external_id')
      .where('cohort_id', '=', imp.cohort_id)
      .orderBy('external_id')
      .execute();
    expect(stored.map((r) => r.external_id)).toEqual([...ids].sort());
  });

  it('guard boundary: removing exactly the threshold share goes through, one more is held', async () => {
    const { ctx } = db();
    const users = range('b', 0, 40);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, users);
    expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', delivered: 40 });
    await reimport(ctx, cohortId, range('b', 0, 19));
    const over = await runSync(ctx, sync.id);
    expect(over).toMatchObject({ status: 'held', removed: 21 });
    expect(over.hold_reason).toMatch(/21 of 40 confirmed/);
    await rejectRun(ctx, over.id);
    await reimport(ctx, cohortId, range('b', 0, 20));
    expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', removed: 20, delivered: 20 });
  });

  it('dry run writes nothing and sends nothing', async () => {
    const { ctx } = db();
    const users = range('d', 0, 30);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    const before = emu.state.stats().requests;
    const r = await runSync(ctx, sync.id, { dryRun: true });
    expect(r).toMatchObject({
      status: 'dry_run',
      dry_run: true,
      members: 30,
      added: 30,
      removed: 0,
      delivered: 0,
      requests: 0,
    });
    expect((r.sample as { adds: string[] }).adds).toHaveLength(10);
    expect(emu.state.stats().requests).toBe(before);
    const rows = await ctx.store.db.selectFrom('ledger').select('external_id').where('sync_id', '=', sync.id).execute();
    expect(rows).toHaveLength(0);
    const staging = await ctx.store.db.selectFrom('staging').select('external_id').where('run_id', '=', r.id).execute();
    expect(staging).toHaveLength(0);
  });

  it('a user who leaves while their add is in flight ends without the tag', async () => {
    const { ctx } = db();
    // Every answer takes 400 ms, so the leave lands while the add is on the wire.
    const { emu, dest } = await setupApp(ctx, {
      users: ['f1'],
      emulator: { faults: { errorRate: 0, dropRate: 0, latencyMs: 400 } },
    });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, []);
    await applyMembershipDelta(ctx, { cohortId, inCohort: true, externalIds: ['f1'], sourceTs: 1000 });
    const before = emu.state.stats().requests; // the sync's segment was created already
    const passing = deliverDestination(ctx, dest.id);
    await waitFor(() => emu.state.stats().requests > before, { what: 'the add to reach OneSignal', timeoutMs: 10_000 });
    // The leave's writer sees confirmed = 0 = the new wish (the add has not been answered yet).
    await applyMembershipDelta(ctx, { cohortId, inCohort: false, externalIds: ['f1'], sourceTs: 2000 });
    await passing;
    // The add landed after the leave was written; the row went pending again and the same pass
    // sent the removal.
    expect(emu.state.stats().requests - before).toBe(2);
    expect(emu.state.getUser('f1')?.[sync.tag_key]).toBeUndefined();
    const row = await ctx.store.db
      .selectFrom('ledger')
      .select(['desired', 'confirmed', 'outcome'])
      .where('sync_id', '=', sync.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ desired: 0, confirmed: 0, outcome: 'delivered' });
  });

  it('applyMembershipDelta: older deltas are ignored, duplicates are harmless', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['w1', 'w2'] });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, []);
    const r1 = await applyMembershipDelta(ctx, {
      cohortId,
      inCohort: true,
      externalIds: ['w1', 'w2', ' w1 ', ''],
      sourceTs: 1000,
    });
    expect(r1).toEqual({ changed: 2, destinationIds: [dest.id] });
    const dup = await applyMembershipDelta(ctx, {
      cohortId,
      inCohort: true,
      externalIds: ['w1', 'w2'],
      sourceTs: 1000,
    });
    expect(dup.changed).toBe(0);
    const out = await applyMembershipDelta(ctx, { cohortId, inCohort: false, externalIds: ['w1'], sourceTs: 3000 });
    expect(out.changed).toBe(1);
    const stale = await applyMembershipDelta(ctx, { cohortId, inCohort: true, externalIds: ['w1'], sourceTs: 2000 });
    expect(stale.changed).toBe(0);
    const rows = await ctx.store.db
      .selectFrom('ledger')
      .select(['external_id', 'desired', 'source_ts'])
      .where('sync_id', '=', sync.id)
      .orderBy('external_id')
      .execute();
    expect(rows).toEqual([
      { external_id: 'w1', desired: 0, source_ts: 3000 },
      { external_id: 'w2', desired: 1, source_ts: 1000 },
    ]);
    const { deliverDestination } = await import('../../src/sync/deliver');
    const d = await deliverDestination(ctx, dest.id);
    expect(d).toMatchObject({ requests: 1, delivered: 1, pending: 0 });
    expect(emu.state.getUser('w2')).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('deleting a sync removes its tag from every user, then forgets it', async () => {
    const { ctx } = db();
    const users = range('x', 0, 15);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    await runSync(ctx, sync.id);
    expect(emu.state.getUser('x4')).toMatchObject({ [sync.tag_key]: '1' });
    const r = await deleteSync(ctx, sync.id);
    expect(r).toMatchObject({ deleted: true, removed: 15, pending: 0 });
    expect(emu.state.getUser('x4')?.[sync.tag_key]).toBeUndefined();
    const left = await ctx.store.db.selectFrom('ledger').select('external_id').where('sync_id', '=', sync.id).execute();
    expect(left).toHaveLength(0);
    await expect(runSync(ctx, sync.id)).rejects.toMatchObject({ code: 'not_found' });
  });
});
