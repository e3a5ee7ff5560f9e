import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { refreshSourceCohorts } from '../../src/connectors/amplitude/cohorts';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';
import { up as unfreezeTimes } from '../../src/store/migrations/008_edge_unfreeze_times';
import { applyPendingWebhooks } from '../../src/sync/cohort-webhooks';
import { importCohortFile } from '../../src/sync/cohorts';
import { deliverDestination } from '../../src/sync/deliver';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { type Emulators, ledgerRows, sourceAndDestination, startEmulators } from './fixtures';

/**
 * Hostile and mistaken cohort-webhook input (issue 11): what a sender gets wrong must answer a
 * clear 4xx on both databases, store nothing, and never freeze or touch membership it does not own.
 */
describeEachDialect('Amplitude cohort webhooks: hostile input', (db) => {
  let emu: Emulators;
  let app: FastifyInstance;
  let base: string;
  const members = ['user-5000', 'user-5001', 'user-6000', 'user-6001', 'user-7000'];

  beforeAll(async () => {
    emu = await startEmulators({ pollsBeforeReady: 1 }, members);
    app = await buildServer({ ctx: db().ctx });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await app?.close();
    await emu?.close();
  });

  type Source = { id: string; webhook_secret: string; webhook_path: string };
  const post = async (
    source: Source,
    body: unknown,
    opts: { contentType?: string; path?: string } = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(base + (opts.path ?? source.webhook_path), {
      method: 'POST',
      headers: {
        'content-type': opts.contentType ?? 'application/json',
        authorization: `Bearer ${source.webhook_secret}`,
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const inboxCount = async (ctx: Context) =>
    Number(
      (
        await ctx.store.db
          .selectFrom('webhook_inbox')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const applyAndDeliver = async (ctx: Context) => {
    const r = await applyPendingWebhooks(ctx);
    for (const d of r.destinationIds) await deliverDestination(ctx, d);
    return r;
  };
  const tagOf = (key: string, user: string) => emu.onesignal.state.getUser(user)?.[key];
  /** Amplitude labels computations in whole seconds: wait until ours is past `ms`. */
  const nextSecondAfter = async (ms: number) => {
    const wait = Math.floor(ms / 1000) * 1000 + 1000 - Date.now() + 5;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };

  it('a far-future computed_time or milliseconds sent as seconds do not freeze membership: the next full sync restores it', async () => {
    const { ctx } = db();
    const cases = [
      { name: 'far future', user: 'user-5000', time: () => 9999999999 },
      // Milliseconds in the seconds field, just after the snapshot the sync holds.
      { name: 'milliseconds', user: 'user-6000', time: (snapshotMs: number) => snapshotMs + 1 },
    ];
    for (const c of cases) {
      const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
      const cohortId = `coh_time_${c.user}`;
      const users = [c.user, c.user.replace(/0$/, '1')].map((user_id) => ({ user_id }));
      emu.amplitude.cohorts.upsert({ id: cohortId, name: `Time ${c.name}`, members: users });
      await refreshSourceCohorts(ctx, source.id);
      const sync = await createSync(ctx, { cohortId, destinationId: dest.id, cadence: 'manual' });
      expect(await runSync(ctx, sync.id), c.name).toMatchObject({ status: 'completed', added: 2 });
      const snapshotMs = Number((await ledgerRows(ctx, sync.id))[0]!.source_ts);

      // Amplitude says the user left (its time is wrong, its word is not): applied at once.
      const sentAt = Date.now();
      const exit = await post(source, {
        cohort_id: cohortId,
        in_cohort: false,
        computed_time: c.time(snapshotMs),
        message_id: `exit-${c.name}`,
        users: [{ user_id: c.user }],
      });
      expect(exit.status, c.name).toBe(200);
      await applyAndDeliver(ctx);
      expect(tagOf(sync.tag_key, c.user), c.name).toBeUndefined();

      // The next computation still has the user: the full sync tags them again.
      await nextSecondAfter(Math.max(sentAt, Date.now()));
      emu.amplitude.cohorts.upsert({ id: cohortId, name: `Time ${c.name}`, members: users });
      const again = await runSync(ctx, sync.id);
      expect(tagOf(sync.tag_key, c.user), c.name).toBe('1');
      expect(again, c.name).toMatchObject({ status: 'completed', added: 1, delivered: 1 });
      const stored = await ctx.store.db
        .selectFrom('webhook_inbox')
        .select('computed_time')
        .where('message_id', '=', `exit-${c.name}`)
        .executeTakeFirstOrThrow();
      expect(Number(stored.computed_time), c.name).toBeLessThanOrEqual(Date.now());
    }
  });

  it('answers 400 naming the field for an out-of-range time or a NUL character, on both databases, storing nothing', async () => {
    const { ctx } = db();
    const { source } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    const good = {
      cohort_id: 'coh_nul',
      cohort_name: 'NUL cohort',
      in_cohort: true,
      computed_time: 1692206763,
      message_id: 'nul-1',
      users: [{ user_id: 'user-7000' }],
    };
    const before = await inboxCount(ctx);
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['computed_time 1e20', { computed_time: 1e20 }, 'computed_time'],
      ['computed_time 1e300', { computed_time: 1e300 }, 'computed_time'],
      ['compute_time 1e20', { computed_time: undefined, compute_time: 1e20 }, 'compute_time'],
      ['NUL in cohort_id', { cohort_id: 'coh\u0000nul' }, 'cohort_id'],
      ['NUL in message_id', { message_id: 'm\u0000' }, 'message_id'],
      ['NUL in cohort_name', { cohort_name: 'name\u0000' }, 'cohort_name'],
      ['NUL in a user_id', { users: [{ user_id: 'user-7000' }, { user_id: 'u\u0000' }] }, 'users.1.user_id'],
    ];
    for (const [name, change, field] of cases) {
      const r = await post(source, { ...good, ...change });
      expect(r.status, name).toBe(400);
      expect(r.body.error, name).toBe('invalid_input');
      expect(String(r.body.message), name).toContain(field);
    }
    // A NUL in the source id of the URL is a malformed id, not a database error.
    const badPath = await post(source, good, { path: `/hooks/amplitude/cohorts/${source.id}%00x` });
    expect(badPath.status).toBe(400);
    expect(String(badPath.body.message)).toMatch(/source id in the URL is malformed/);
    expect(await inboxCount(ctx)).toBe(before);
    // The same message without the mistakes is taken.
    expect((await post(source, good)).status).toBe(200);
  });

  it('a source’s webhook may change only its own cohorts: never a file-imported one nor another source’s', async () => {
    const { ctx } = db();
    const one = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    // Another project (it only pushes, so the emulator need not know its keys) on another app.
    const two = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url, {
      project: { apiKey: 'amp_other_project', secretKey: 'amp_other_secret' },
      app: { appId: '9c1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b13', apiKey: 'os_other_key' },
    });
    const dir = mkdtempSync(join(tmpdir(), 'ampsignal-filecoh-'));
    writeFileSync(join(dir, 'members.csv'), 'user_id\nuser-5001\n');
    await importCohortFile(ctx, { file: join(dir, 'members.csv'), name: 'From a file', id: 'filecoh' });
    const fileSync = await createSync(ctx, { cohortId: 'filecoh', destinationId: two.dest.id, cadence: 'manual' });
    expect((await post(one.source, { ...msgFor('coh_of_one', 'own-1'), users: [] })).status).toBe(200);
    await applyAndDeliver(ctx);
    const oneSync = await createSync(ctx, { cohortId: 'coh_of_one', destinationId: one.dest.id, cadence: 'manual' });

    const before = await inboxCount(ctx);
    for (const [name, cohortId] of [
      ['file-imported', 'filecoh'],
      ['another source’s', 'coh_of_one'],
    ] as const) {
      const r = await post(two.source, msgFor(cohortId, `foreign-${cohortId}`));
      expect(r.status, name).toBe(403);
      expect(r.body.error, name).toBe('forbidden');
      expect(String(r.body.message), name).not.toContain(one.source.id);
    }
    expect(await inboxCount(ctx)).toBe(before);
    await applyAndDeliver(ctx);
    expect(tagOf(fileSync.tag_key, 'user-7000')).toBeUndefined();
    expect(tagOf(oneSync.tag_key, 'user-7000')).toBeUndefined();

    // A message stored before its cohort was claimed elsewhere is refused when applied.
    await ctx.store.db
      .insertInto('webhook_inbox')
      .values({
        source_id: two.source.id,
        message_id: 'stored-earlier',
        cohort_id: 'filecoh',
        cohort_name: null,
        in_cohort: 1,
        computed_time: Date.now(),
        body: JSON.stringify({ users: [{ user_id: 'user-7000' }] }),
        body_deflated: null,
        received_at: Date.now(),
        applied_at: null,
        error: null,
      })
      .execute();
    const applied = await applyAndDeliver(ctx);
    expect(applied.failed).toBe(1);
    expect((await ledgerRows(ctx, fileSync.id)).map((r) => r.external_id)).not.toContain('user-7000');
    expect(tagOf(fileSync.tag_key, 'user-7000')).toBeUndefined();
    // The source's own cohort still takes its messages.
    expect((await post(one.source, msgFor('coh_of_one', 'own-2'))).status).toBe(200);
  });

  it('takes the body as JSON whatever its content type, with one size limit for every type', async () => {
    const { ctx } = db();
    const { source } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ user_id: `plain-${i}` }));
    for (const [name, users] of [
      ['small', many(2)],
      ['over 16 kB', many(1000)],
    ] as const) {
      for (const contentType of ['text/plain', 'application/octet-stream', 'application/json; charset=utf-8']) {
        const r = await post(
          source,
          { ...msgFor('coh_plain', `plain-${name}-${contentType}`), users },
          { contentType },
        );
        expect(r.status, `${name} ${contentType}`).toBe(200);
        expect(r.body.users, `${name} ${contentType}`).toBe(users.length);
      }
    }
    const small = await buildServer({ ctx, bodyLimit: 2_000 });
    const url = await small.listen({ host: '127.0.0.1', port: 0 });
    try {
      for (const contentType of ['text/plain', 'application/json']) {
        const res = await fetch(url + source.webhook_path, {
          method: 'POST',
          headers: { 'content-type': contentType, authorization: `Bearer ${source.webhook_secret}` },
          body: JSON.stringify({ ...msgFor('coh_plain', `big-${contentType}`), users: many(200) }),
        });
        expect(res.status, contentType).toBe(413);
      }
    } finally {
      await small.close();
    }
  });

  it('an upgrade sets ledger times frozen in the future back to now', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    expect((await post(source, { ...msgFor('coh_frozen', 'frozen-0'), users: [] })).status).toBe(200);
    await applyAndDeliver(ctx);
    const sync = await createSync(ctx, { cohortId: 'coh_frozen', destinationId: dest.id, cadence: 'manual' });
    await ctx.store.db
      .insertInto('ledger')
      .values({
        sync_id: sync.id,
        destination_id: dest.id,
        external_id: 'user-5000',
        desired: 0,
        confirmed: 0,
        source_ts: 9999999999000,
        run_id: null,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        lease_owner: null,
        lease_until: null,
        updated_at: Date.now(),
      })
      .execute();
    const before = Date.now();
    await unfreezeTimes(ctx.store.db, ctx.store.dialect);
    const row = (await ledgerRows(ctx, sync.id)).find((r) => r.external_id === 'user-5000')!;
    expect(Number(row.source_ts)).toBeGreaterThanOrEqual(before);
    expect(Number(row.source_ts)).toBeLessThanOrEqual(Date.now());
    // A delta of now decides the row again.
    await nextSecondAfter(Date.now());
    expect(
      (await post(source, { ...msgFor('coh_frozen', 'frozen-1'), computed_time: Math.floor(Date.now() / 1000) }))
        .status,
    ).toBe(200);
    await applyAndDeliver(ctx);
    const after = (await ledgerRows(ctx, sync.id)).find((r) => r.external_id === 'user-5000')!;
    expect(after.desired).toBe(1);
  });
});

function msgFor(cohortId: string, messageId: string) {
  return {
    cohort_id: cohortId,
    cohort_name: `Cohort ${cohortId}`,
    in_cohort: true,
    computed_time: Math.floor(Date.now() / 1000),
    message_id: messageId,
    users: [{ user_id: 'user-7000' }, { user_id: 'user-5000' }],
  };
}
