import { afterAll, expect, it } from 'vitest';
import { pruneExpired } from '../../src/jobs/retention';
import { deliverDestination } from '../../src/sync/deliver';
import { applyMembershipDelta } from '../../src/sync/ledger';
import { eachRunRecord, exportRunRecords, pageRunRecords, type RunRecord } from '../../src/sync/record-reads';
import { appendRecords, type RecordRow } from '../../src/sync/records';
import { approveRun, runSync } from '../../src/sync/run';
import { getRunView, listRuns } from '../../src/sync/runs';
import { showUser, userSummary } from '../../src/sync/user-history';
import { describeEachDialect } from '../helpers/db';
import { addsUp, cohortSync, range, reimport, setupApp } from './setup';

const emulators: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

async function all(ctx: Parameters<typeof pageRunRecords>[0], runId: string, outcome?: RunRecord['outcome']) {
  const out: RunRecord[] = [];
  for await (const r of eachRunRecord(ctx, runId, outcome ? { outcome } : {})) out.push(r);
  return out;
}

async function exported(ctx: Parameters<typeof pageRunRecords>[0], runId: string, format: 'csv' | 'ndjson') {
  let text = '';
  for await (const chunk of exportRunRecords(ctx, runId, format)) text += chunk;
  return text;
}

describeEachDialect('run records', (db) => {
  it("a run's records stay as they were after a later run retries its not_found users; counters add up with retries", async () => {
    const { ctx } = db();
    const known = range('u', 0, 40);
    const ghosts = range('ghost', 0, 10);
    const { emu, dest } = await setupApp(ctx, { users: known });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, [...known, ...ghosts]);
    const r1 = await runSync(ctx, sync.id);
    expect(r1).toMatchObject({ added: 50, retried: 0, delivered: 40, not_found: 10, pending: 0 });
    const before = await all(ctx, r1.id);
    expect(before.filter((r) => r.outcome === 'not_found').map((r) => r.external_id)).toEqual(ghosts.sort());
    expect(before.find((r) => r.external_id === 'ghost0')).toMatchObject({ operation: 'add', status: 404 });

    // The ghosts sign up in OneSignal; 5 members leave, 3 join: the next run retries the ghosts.
    emu.state.seedUsers([...ghosts, ...range('n', 0, 3)]);
    await reimport(ctx, cohortId, [...known.slice(5), ...ghosts, ...range('n', 0, 3)]);
    const r2 = await runSync(ctx, sync.id);
    expect(r2).toMatchObject({ added: 3, removed: 5, retried: 10, delivered: 18, not_found: 0, failed: 0, pending: 0 });
    expect(addsUp(r2)).toBe(true);
    expect(r2.members).toBe(r2.added + r2.unchanged);

    // r1 still says what happened then, record for record and counter for counter.
    expect(await all(ctx, r1.id)).toEqual(before);
    expect(await getRunView(ctx, r1.id)).toMatchObject({ delivered: 40, not_found: 10 });
    const retried = (await pageRunRecords(ctx, r2.id, { outcome: 'delivered', limit: 100 })).records;
    expect(retried.map((r) => r.external_id)).toEqual(expect.arrayContaining(ghosts));
    expect(retried).toHaveLength(18);
    expect(retried.filter((r) => r.operation === 'remove')).toHaveLength(5);
  });

  it('two records of one user in one batch, and one more in a later batch, each get their own seq', async () => {
    const { ctx } = db();
    const rec = (externalId: string, operation: 'add' | 'remove', message: string | null): RecordRow => ({
      runId: 'run_seq',
      externalId,
      operation,
      outcome: message === null ? 'delivered' : 'failed',
      status: message === null ? 200 : 400,
      attempts: 1,
      message,
      atMs: Date.now(),
    });
    const append = (rows: RecordRow[]) =>
      ctx.store.db.transaction().execute((trx) => appendRecords(trx, ctx.store, rows));
    await append([rec('u1', 'add', null), rec('u2', 'add', null), rec('u1', 'remove', 'tag key rejected')]);
    await append([rec('u1', 'add', 'tag key rejected'), rec('u2', 'remove', null)]);
    const rows = await ctx.store.db
      .selectFrom('run_records')
      .innerJoin('run_keys', 'run_keys.key', 'run_records.run_key')
      .select(['run_records.external_id', 'run_records.seq', 'run_records.code', 'run_records.message_id'])
      .where('run_keys.run_id', '=', 'run_seq')
      .orderBy('run_records.external_id')
      .orderBy('run_records.seq')
      .execute();
    expect(rows.map((r) => `${r.external_id}/${r.seq}`)).toEqual(['u1/0', 'u1/1', 'u1/2', 'u2/0', 'u2/1']);
    // Both failures point at the one stored message.
    const failed = rows.filter((r) => r.message_id !== null);
    expect(failed).toHaveLength(2);
    expect(new Set(failed.map((r) => Number(r.message_id))).size).toBe(1);
    // Records of a run that does not exist are retention's to prune: removed here, so the
    // retention test below counts only its own.
    const key = await ctx.store.db
      .selectFrom('run_keys')
      .select('key')
      .where('run_id', '=', 'run_seq')
      .executeTakeFirstOrThrow();
    await ctx.store.db.deleteFrom('run_records').where('run_key', '=', key.key).execute();
    await ctx.store.db.deleteFrom('run_keys').where('key', '=', key.key).execute();
  });

  it('counts the requests of a run delivered by another pass (the worker path) on the run', async () => {
    const { ctx } = db();
    const users = range('w', 0, 30);
    const { emu, dest } = await setupApp(ctx, { users: users.slice(0, 25) });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    const run = await runSync(ctx, sync.id, { deliver: 'enqueue', trigger: 'schedule' });
    expect(run).toMatchObject({ status: 'running', requests: 0, pending: 30 });
    const sent = emu.state.stats().requests;
    await deliverDestination(ctx, dest.id, { workerId: 'wrk_test' });
    const done = await getRunView(ctx, run.id);
    expect(done).toMatchObject({ status: 'completed', delivered: 25, not_found: 5, pending: 0 });
    expect(done.requests).toBe(emu.state.stats().requests - sent);
    expect(done.requests).toBe(30);
  });

  it('pages 2,500 records with no gap or repeat, by outcome too, and says when none remain', async () => {
    const { ctx } = db();
    const found = range('p', 0, 2_000);
    const ghosts = range('q', 0, 500);
    const { emu, dest } = await setupApp(ctx, { users: found });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, [...found, ...ghosts]);
    const run = await runSync(ctx, sync.id);
    expect(run).toMatchObject({ delivered: 2_000, not_found: 500 });
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await pageRunRecords(ctx, run.id, { limit: 300, ...(cursor ? { cursor } : {}) });
      seen.push(...page.records.map((r) => r.external_id));
      cursor = page.next_cursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(9);
    expect(seen).toHaveLength(2_500);
    expect(new Set(seen).size).toBe(2_500);
    expect(seen).toEqual([...found, ...ghosts].sort());
    const notFound = await all(ctx, run.id, 'not_found');
    expect(notFound.map((r) => r.external_id)).toEqual(ghosts.sort());
    const last = await pageRunRecords(ctx, run.id, { outcome: 'not_found', limit: 500 });
    expect(last.next_cursor).toBeNull();
    await expect(pageRunRecords(ctx, run.id, { cursor: 'not-a-cursor' })).rejects.toMatchObject({
      code: 'invalid_input',
    });
  });

  it('exports a completed, a failed and a held run (pending records included), as CSV and NDJSON', async () => {
    const { ctx } = db();
    const users = range('e', 0, 20);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, [...users, '=cmd']);
    const completed = await runSync(ctx, sync.id);
    const csv = (await exported(ctx, completed.id, 'csv')).trim().split('\n');
    expect(csv[0]).toBe('external_id,operation,outcome,status,message,attempts,at');
    expect(csv).toHaveLength(22);
    const first = (await all(ctx, completed.id)).find((r) => r.external_id === 'e0')!;
    expect(csv).toContain(`e0,add,delivered,${first.status},,0,${first.at}`);
    expect(first.status).toBeGreaterThanOrEqual(200);
    // A spreadsheet would run a cell starting with '=': it is quoted.
    expect(csv.find((l) => l.startsWith('"=cmd"'))).toMatch(/,add,not_found,404,/);
    const nd = (await exported(ctx, completed.id, 'ndjson'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunRecord);
    expect(nd).toHaveLength(21);

    // Held: the whole cohort would leave; nothing is applied, so it has no records yet.
    await reimport(ctx, cohortId, ['e0']);
    const held = await runSync(ctx, sync.id);
    expect(held.status).toBe('held');
    expect(await exported(ctx, held.id, 'csv')).toBe('external_id,operation,outcome,status,message,attempts,at\n');

    // Approved, it removes 20 users (the one OneSignal never knew settles not_found at once).
    const approved = await approveRun(ctx, held.id);
    expect(approved).toMatchObject({ status: 'completed', removed: 20, delivered: 19, not_found: 1 });
    expect((await exported(ctx, approved.id, 'csv')).trim().split('\n')).toHaveLength(21);

    // Failed: the key is refused, the destination pauses and every change stays pending.
    const bad = await setupApp(ctx, { users, apiKey: 'wrong-key' });
    emulators.push(bad.emu);
    const other = await cohortSync(ctx, bad.dest.id, users.slice(0, 7));
    const failed = await runSync(ctx, other.sync.id);
    expect(failed.status).toBe('failed');
    const rows = (await exported(ctx, failed.id, 'ndjson'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as RunRecord);
    expect(rows).toHaveLength(7);
    expect(rows.every((r) => r.operation === 'add' && r.outcome === 'pending')).toBe(true);
    expect(failed.requests).toBeGreaterThan(0);
  });

  it('retention deletes the records of runs ended before the cutoff and keeps their counters', async () => {
    const { ctx } = db();
    const users = range('r', 0, 12);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, users);
    const run = await runSync(ctx, sync.id);
    expect(await all(ctx, run.id)).toHaveLength(12);
    const kept = await pruneExpired(ctx, { keepRecordsMs: 60_000 });
    expect(kept.records).toBe(0);
    const pruned = await pruneExpired(ctx, { now: Date.now() + 120_000, keepRecordsMs: 60_000 });
    expect(pruned.records).toBeGreaterThanOrEqual(12);
    expect(await all(ctx, run.id)).toEqual([]);
    expect(await getRunView(ctx, run.id)).toMatchObject({ delivered: 12 });
  });

  it('user show: a user in two syncs, the tag wanted in both, carried in one, and why not in the other', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: ['both', 'solo'], maxTags: 1, emulator: { maxTagsPerUser: 1 } });
    emulators.push(emu);
    const a = await cohortSync(ctx, dest.id, ['both', 'solo'], 'Power users');
    const b = await cohortSync(ctx, dest.id, ['both'], 'Churn risk');
    const ra = await runSync(ctx, a.sync.id);
    const rb = await runSync(ctx, b.sync.id);
    expect(rb).toMatchObject({ failed: 1 });
    const u = await showUser(ctx, 'both');
    expect(u.syncs).toEqual([
      expect.objectContaining({
        sync_id: a.sync.id,
        cohort_name: 'Power users',
        in_cohort: true,
        tag_confirmed: true,
        state: 'in_sync',
        records: [expect.objectContaining({ run_id: ra.id, operation: 'add', outcome: 'delivered' })],
      }),
      expect.objectContaining({
        sync_id: b.sync.id,
        cohort_name: 'Churn risk',
        in_cohort: true,
        tag_confirmed: false,
        state: 'failed',
        last_error: expect.stringMatching(/tag|limit/i),
        records: [
          expect.objectContaining({ run_id: rb.id, outcome: 'failed', message: expect.stringMatching(/tag|limit/i) }),
        ],
      }),
    ]);
    expect(userSummary(u)).toMatch(/Churn risk.*\n.*tag wanted, not carried by OneSignal — failed/);
    expect((await showUser(ctx, 'nobody')).syncs).toEqual([]);
  });

  it('a webhook minute becomes one run with its messages, counters and records', async () => {
    const { ctx } = db();
    const users = range('h', 0, 10);
    const { emu, dest } = await setupApp(ctx, { users: users.slice(0, 8) });
    emulators.push(emu);
    const { cohortId, sync } = await cohortSync(ctx, dest.id, users.slice(0, 4));
    await runSync(ctx, sync.id);
    // Both messages must land in one wall-clock minute: start away from a minute's end.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    const t = Date.now();
    const push = (messageId: string, inCohort: boolean, ids: string[], ts: number) =>
      applyMembershipDelta(ctx, { cohortId, inCohort, externalIds: ids, sourceTs: ts, messageId });
    // Two messages in one minute: 6 join (2 unknown to OneSignal), then 1 leaves.
    await push('m1', true, users.slice(4, 10), t + 1);
    await push('m2', false, ['h0'], t + 2);
    await deliverDestination(ctx, dest.id);
    const runs = (await listRuns(ctx, { syncId: sync.id })).filter((r) => r.trigger === 'webhook');
    expect(runs).toHaveLength(1);
    const run = await getRunView(ctx, runs[0]!.id);
    expect(run).toMatchObject({
      status: 'completed',
      added: 6,
      removed: 1,
      retried: 0,
      delivered: 5,
      not_found: 2,
      pending: 0,
      requests: 7,
    });
    expect(run.added + run.removed + run.retried).toBe(run.delivered + run.not_found + run.failed + run.pending);
    expect(run.sample).toMatchObject({
      messages: 2,
      message_ids: ['m1', 'm2'],
      computed_from: t + 1,
      computed_to: t + 2,
    });
    const records = await all(ctx, run.id);
    expect(records.map((r) => `${r.external_id} ${r.operation} ${r.outcome}`)).toEqual([
      'h0 remove delivered',
      ...users.slice(4, 8).map((u) => `${u} add delivered`),
      'h8 add not_found',
      'h9 add not_found',
    ]);
    // A repeat of a message changes nothing and opens no run.
    await push('m1', true, users.slice(4, 10), t + 1);
    expect((await listRuns(ctx, { syncId: sync.id })).filter((r) => r.trigger === 'webhook')).toHaveLength(1);
  });

  it('messages applied to one sync at once (PostgreSQL: on two connections) make one webhook run counting them all', async () => {
    const { ctx } = db();
    const users = range('c', 0, 40);
    const { emu, dest } = await setupApp(ctx, { users });
    emulators.push(emu);
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
    // A few syncs, each with its own pair of messages racing: one pair could miss the window by luck.
    for (let round = 0; round < 4; round++) {
      const { cohortId, sync } = await cohortSync(ctx, dest.id, [`c${round}`]);
      const t = Date.now();
      const push = (messageId: string, ids: string[]) =>
        applyMembershipDelta(ctx, { cohortId, inCohort: true, externalIds: ids, sourceTs: t, messageId });
      await Promise.all([push(`a${round}`, users.slice(10, 25)), push(`b${round}`, users.slice(25, 40))]);
      const runs = (await listRuns(ctx, { syncId: sync.id })).filter((r) => r.trigger === 'webhook');
      expect(runs).toHaveLength(1);
      expect(await getRunView(ctx, runs[0]!.id)).toMatchObject({ added: 30, pending: 30 });
    }
  });
});
