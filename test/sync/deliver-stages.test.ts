import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { OneSignalClient } from '../../src/connectors/onesignal/client';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import type { Context } from '../../src/store';
import { buildRequests, MAX_ATTEMPTS, outcomeFor, SyncTagBook, sendUser } from '../../src/sync/deliver-user';
import {
  type ClaimedRow,
  claimUsers,
  type DeliveryLease,
  releaseLeases,
  settleOutcomes,
} from '../../src/sync/delivery-queue';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination, seedLedger, seedSync } from '../helpers/seed';

let n = 0;

/** A destination with two syncs (tags amp_a_*, amp_b_*) and ledger rows: [sync letter, user, desired, confirmed]. */
async function seedTwoSyncs(ctx: Context, rows: Array<['a' | 'b', string, number, number]>) {
  const id = `st${++n}_${randomUUID().slice(0, 8)}`;
  const dst = `dst_${id}`;
  await seedDestination(ctx, { id: dst, name: dst, app_id: `app_${id}`, api_url: 'http://127.0.0.1:9', api_key: 'k' });
  for (const s of ['a', 'b'] as const) {
    await seedCohort(ctx, { id: `coh_${s}_${id}`, name: `c_${s}_${id}` });
    await seedSync(ctx, {
      id: `syn_${s}_${id}`,
      cohort_id: `coh_${s}_${id}`,
      destination_id: dst,
      tag_key: `amp_${s}_${id}`,
    });
  }
  await seedLedger(
    ctx,
    rows.map(([s, user, desired, confirmed]) => ({
      sync_id: `syn_${s}_${id}`,
      destination_id: dst,
      external_id: user,
      desired,
      confirmed,
    })),
  );
  return { id, dst, syncA: `syn_a_${id}`, syncB: `syn_b_${id}`, tagA: `amp_a_${id}`, tagB: `amp_b_${id}` };
}

const lease = (destinationId: string): DeliveryLease => ({ destinationId, workerId: `wrk_${randomUUID()}` });

async function ledgerRow(ctx: Context, syncId: string, user: string) {
  return ctx.store.db
    .selectFrom('ledger')
    .selectAll()
    .where('sync_id', '=', syncId)
    .where('external_id', '=', user)
    .executeTakeFirstOrThrow();
}

describeEachDialect('delivery stages', (db) => {
  let emu: OneSignalEmulator;
  const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
  beforeAll(async () => {
    emu = await startOneSignalEmulator({
      apps: [app],
      users: { mode: 'seeded', ids: ['u1', 'u2'] },
      rateLimitPerSecond: 0,
      perUserPerSecond: 0,
    });
  });
  afterAll(async () => emu?.close());
  const client = () =>
    new OneSignalClient({ appId: app.appId, apiKey: app.apiKey, apiUrl: emu.url, rateLimitPerSecond: 10_000 });

  it('claim: all of a user’s pending rows in one claim, with the tags OneSignal carries; leased rows are nobody else’s', async () => {
    const { ctx } = db();
    const s = await seedTwoSyncs(ctx, [
      ['a', 'u1', 1, 0],
      ['b', 'u1', 0, 1],
      ['a', 'u2', 1, 0],
      ['b', 'u2', 1, 1],
      ['a', 'u3', 1, 1],
    ]);
    const first = lease(s.dst);
    const claimed = await claimUsers(ctx, first, 1);
    expect(claimed).toHaveLength(1);
    expect(claimed[0]).toMatchObject({ externalId: 'u1', confirmedTags: 1 });
    expect(claimed[0]!.rows.map((r) => [r.sync_id, r.desired]).sort()).toEqual([
      [s.syncA, 1],
      [s.syncB, 0],
    ]);
    const second = lease(s.dst);
    const other = await claimUsers(ctx, second, 10);
    expect(other.map((u) => [u.externalId, u.rows.length, u.confirmedTags])).toEqual([['u2', 1, 1]]);
    expect(await claimUsers(ctx, lease(s.dst), 10)).toEqual([]);
    await releaseLeases(ctx, s.dst, [first.workerId]);
    expect((await claimUsers(ctx, lease(s.dst), 10)).map((u) => u.externalId)).toEqual(['u1']);
  });

  it('build requests: each row becomes its sync’s tag change; deletes go first when the adds pass the budget', async () => {
    const { ctx } = db();
    const s = await seedTwoSyncs(ctx, [
      ['a', 'u1', 1, 0],
      ['b', 'u1', 0, 1],
    ]);
    const [user] = await claimUsers(ctx, lease(s.dst), 10);
    const tags = new SyncTagBook(ctx, s.dst);
    await tags.cover(user!.rows);
    const roomy = buildRequests(user!, tags, 10);
    expect(roomy.requests.map((r) => r.map((c) => [c.tagKey, c.member]))).toEqual([
      [
        [s.tagA, true],
        [s.tagB, false],
      ],
    ]);
    const full = buildRequests(user!, tags, 1);
    expect(full.requests.map((r) => r.map((c) => c.tagKey))).toEqual([[s.tagB], [s.tagA]]);
  });

  it('send: OneSignal’s answers become outcomes (delivered, not_found), retries cost attempts, a 429 does not', async () => {
    const { ctx } = db();
    const s = await seedTwoSyncs(ctx, [
      ['a', 'u1', 1, 0],
      ['a', 'ghost', 1, 0],
    ]);
    const users = await claimUsers(ctx, lease(s.dst), 10);
    const tags = new SyncTagBook(ctx, s.dst);
    await tags.cover(users.flatMap((u) => u.rows));
    const sent = await Promise.all(users.map((u) => sendUser(client(), buildRequests(u, tags, 10))));
    expect(sent.flatMap((r) => r.outcomes.map((o) => [o.externalId, o.outcome]))).toEqual([
      ['ghost', 'not_found'],
      ['u1', 'delivered'],
    ]);
    expect(emu.state.getUser('u1', app.appId)).toMatchObject({ [s.tagA]: '1' });

    const row: ClaimedRow = { sync_id: s.syncA, external_id: 'u1', desired: 1, attempts: 2 };
    const retry = outcomeFor(row, { status: 'retry', reason: 'OneSignal answered 503' }, 1_000);
    expect(retry).toMatchObject({ outcome: 'retry', attempts: 3 });
    expect(retry.nextAttemptAt).toBeGreaterThan(1_000);
    const held = outcomeFor(row, { status: 'held', reason: '429', retryAfterMs: 5_000 }, 1_000);
    expect(held).toMatchObject({ outcome: 'retry', attempts: 2, nextAttemptAt: 6_000 });
    const last = outcomeFor({ ...row, attempts: MAX_ATTEMPTS - 1 }, { status: 'retry', reason: 'down' });
    expect(last).toMatchObject({ outcome: 'failed', error: `down (gave up after ${MAX_ATTEMPTS} attempts)` });
  });

  it('settle: an answer sets confirmed and frees the row; an answer to a wish that changed in flight leaves it pending', async () => {
    const { ctx } = db();
    const s = await seedTwoSyncs(ctx, [
      ['a', 'u1', 1, 0],
      ['a', 'u2', 1, 0],
    ]);
    const mine = lease(s.dst);
    await claimUsers(ctx, mine, 10);
    // u2 left the cohort while its add was in flight.
    await ctx.store.db
      .updateTable('ledger')
      .set({ desired: 0 })
      .where('sync_id', '=', s.syncA)
      .where('external_id', '=', 'u2')
      .execute();
    const delivered = (user: string) =>
      outcomeFor({ sync_id: s.syncA, external_id: user, desired: 1, attempts: 0 }, { status: 'delivered' });
    await settleOutcomes(ctx, lease(s.dst), [delivered('u1')]);
    expect(await ledgerRow(ctx, s.syncA, 'u1')).toMatchObject({ confirmed: 0, lease_owner: mine.workerId });
    await settleOutcomes(ctx, mine, [delivered('u1'), delivered('u2')]);
    const u1 = await ledgerRow(ctx, s.syncA, 'u1');
    expect(u1).toMatchObject({ confirmed: 1, outcome: 'delivered', lease_owner: null, lease_until: null });
    const u2 = await ledgerRow(ctx, s.syncA, 'u2');
    expect(u2).toMatchObject({ desired: 0, confirmed: 1, outcome: null, lease_owner: null });
    expect((await claimUsers(ctx, lease(s.dst), 10)).map((u) => u.externalId)).toEqual(['u2']);
  });
});
