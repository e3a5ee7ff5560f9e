import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addDestination } from '../../src/app/destinations';
import { addSource, updateSource } from '../../src/app/sources';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { createJobQueue } from '../../src/jobs';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';
import { applyPendingWebhooks, applyWebhookMessage } from '../../src/sync/cohort-webhooks';
import { deliverDestination } from '../../src/sync/deliver';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { AMP, ledgerRows, OS_APP } from './fixtures';

// One destination per OneSignal app: the tests that add a destination of their own use apps of their own.
const BY_EMAIL_APP = { appId: '7a1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b11', apiKey: 'os_test_key_email' };
// One source per Amplitude project: the end-to-end test's source is a project of its own.
const E2E_PROJECT = { apiKey: 'amp_e2e_key', secretKey: 'amp_e2e_secret' };
const E2E_APP = { appId: '8b1c2b7e-0a4d-4c8e-9b1f-2d6e5a7c9b12', apiKey: 'os_test_key_e2e' };

describeEachDialect('Amplitude cohort webhooks (push)', (db) => {
  let app: FastifyInstance;
  let base: string;
  let onesignal: OneSignalEmulator;
  let source: { id: string; webhook_secret: string; webhook_path: string };
  let destId: string;

  const post = async (body: unknown, opts: { secret?: string | null; path?: string; raw?: string } = {}) => {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Amplitude/Webhook/1.0',
    };
    const secret = opts.secret === undefined ? source.webhook_secret : opts.secret;
    if (secret !== null) headers.authorization = `Bearer ${secret}`;
    const started = performance.now();
    const res = await fetch(base + (opts.path ?? source.webhook_path), {
      method: 'POST',
      headers,
      body: opts.raw ?? JSON.stringify(body),
    });
    const ms = performance.now() - started;
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms };
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
  const msg = (cohort: string, inCohort: boolean, t: number, ids: string[], id?: string) => ({
    cohort_name: `Cohort ${cohort}`,
    cohort_id: cohort,
    in_cohort: inCohort,
    computed_time: String(t),
    message_id: id ?? `${cohort}-${inCohort ? 'enter' : 'exit'}-${t}-${ids.join('.')}`,
    users: ids.map((user_id) => ({ user_id, user_properties: { city: 'Paris' } })),
  });
  /** Applies stored messages and delivers to OneSignal, as the jobs layer would. */
  const applyAndDeliver = async (ctx: Context) => {
    const r = await applyPendingWebhooks(ctx);
    for (const d of r.destinationIds) await deliverDestination(ctx, d);
    return r;
  };
  const tag = (syncTag: string, user: string, appId = OS_APP.appId) => onesignal.state.getUser(user, appId)?.[syncTag];

  beforeAll(async () => {
    const { ctx } = db();
    onesignal = await startOneSignalEmulator({
      apps: [OS_APP, BY_EMAIL_APP, E2E_APP],
      perUserPerSecond: 1000,
      users: { mode: 'seeded', ids: ['u1', 'u2', 'u3', 'u4', 'a', 'b', 'c', 'd'] },
    });
    app = await buildServer({ ctx });
    base = await app.listen({ host: '127.0.0.1', port: 0 });
    source = await addSource(ctx, {
      name: 'push-project',
      api_key: AMP.apiKey,
      secret_key: AMP.secretKey,
      api_url: 'http://127.0.0.1:9',
    });
    destId = (
      await addDestination(ctx, {
        name: 'push-app',
        app_id: OS_APP.appId,
        api_key: OS_APP.apiKey,
        api_url: onesignal.url,
        source_id: source.id,
      })
    ).id;
  });
  afterAll(async () => {
    await app?.close();
    await onesignal?.close();
  });

  it('refuses a wrong or missing secret with 401 and an unknown source with 404, storing nothing', async () => {
    const { ctx } = db();
    const before = await inboxCount(ctx);
    expect((await post(msg('coh_x', true, 100, ['u1']), { secret: 'wrong' })).status).toBe(401);
    expect((await post(msg('coh_x', true, 100, ['u1']), { secret: null })).status).toBe(401);
    expect((await post(msg('coh_x', true, 100, ['u1']), { path: '/hooks/amplitude/cohorts/src_nope' })).status).toBe(
      404,
    );
    expect(await inboxCount(ctx)).toBe(before);
  });

  it('answers 400 naming the field for malformed bodies, storing nothing', async () => {
    const { ctx } = db();
    const before = await inboxCount(ctx);
    const bad = await post(null, { raw: '{"cohort_id": "c1", "in_cohort": tru' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/not valid JSON/);
    const good = msg('coh_x', true, 100, ['u1']);
    for (const field of ['cohort_id', 'in_cohort', 'users'] as const) {
      const { [field]: _dropped, ...rest } = good;
      const r = await post(rest);
      expect(r.status, field).toBe(400);
      expect(r.body.message, field).toContain(field);
    }
    const notArray = await post({ ...good, users: 'u1' });
    expect(notArray.status).toBe(400);
    expect(notArray.body.message).toMatch(/users/);
    const badTime = await post({ ...good, computed_time: 'yesterday' });
    expect(badTime.status).toBe(400);
    expect(badTime.body.message).toMatch(/computed_time/);
    expect(await inboxCount(ctx)).toBe(before);
  });

  it('answers 413 for a body over the limit, storing nothing', async () => {
    const { ctx } = db();
    const small = await buildServer({ ctx, bodyLimit: 2_000 });
    const url = await small.listen({ host: '127.0.0.1', port: 0 });
    try {
      const before = await inboxCount(ctx);
      const big = msg(
        'coh_big',
        true,
        100,
        Array.from({ length: 200 }, (_, i) => `user-${i}`),
      );
      const res = await fetch(url + source.webhook_path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${source.webhook_secret}` },
        body: JSON.stringify(big),
      });
      expect(res.status).toBe(413);
      expect(await inboxCount(ctx)).toBe(before);
    } finally {
      await small.close();
    }
  });

  it('a 1,000-user message is checked off the request thread, kept deflated, and applied in full', async () => {
    const { ctx } = db();
    const ids = Array.from({ length: 1000 }, (_, i) => `big-${i}`);
    const create = await post(msg('coh_large', true, 1000, []));
    expect(create.status).toBe(200);
    await applyAndDeliver(ctx);
    const sync = await createSync(ctx, { cohortId: 'coh_large', destinationId: destId, cadence: 'manual' });

    const before = await inboxCount(ctx);
    const tooBig = msg('coh_large', true, 2000, ids, 'large-enter-2000');
    const { users: _users, ...noUsers } = tooBig;
    const missing = await post({ ...noUsers, padding: 'x'.repeat(40_000) });
    expect(missing.status).toBe(400);
    expect(missing.body.message).toContain('users');
    const broken = await post(null, { raw: JSON.stringify(tooBig).slice(0, -2) });
    expect(broken.status).toBe(400);
    expect(broken.body.message).toMatch(/not valid JSON/);
    const badUser = await post({ ...tooBig, users: [...tooBig.users.slice(0, 999), { user_id: { nested: true } }] });
    expect(badUser.status).toBe(400);
    expect(badUser.body.message).toContain('users.999.user_id');
    const longId = await post(msg('coh_large', true, 2000, ids));
    expect(longId.status).toBe(400);
    expect(longId.body.message).toMatch(/message_id is longer than 512 characters/);
    expect(await inboxCount(ctx)).toBe(before);

    const ok = await post(tooBig);
    expect(ok.body).toMatchObject({ ok: true, duplicate: false, users: 1000 });
    const stored = await ctx.store.db
      .selectFrom('webhook_inbox')
      .selectAll()
      .where('message_id', '=', tooBig.message_id)
      .executeTakeFirstOrThrow();
    expect(stored.body).toBe('');
    expect(stored.body_deflated!.length).toBeLessThan(JSON.stringify(tooBig).length / 4);
    expect((await post(tooBig)).body).toMatchObject({ ok: true, duplicate: true });
    await applyPendingWebhooks(ctx);
    const desired = (await ledgerRows(ctx, sync.id)).filter((r) => r.desired === 1).map((r) => r.external_id);
    expect(desired.sort()).toEqual([...ids].sort());
  });

  it('refuses prototype-poisoning keys with 400, in small and large bodies, storing nothing', async () => {
    const { ctx } = db();
    const before = await inboxCount(ctx);
    const good = JSON.stringify(msg('coh_poison', true, 100, ['u1']));
    const large = JSON.stringify(
      msg(
        'coh_poison',
        true,
        100,
        Array.from({ length: 1000 }, (_, i) => `p-${i}`),
      ),
    );
    for (const [name, raw] of [
      ['__proto__', good.replace('{', '{"__proto__":{"polluted":true},')],
      ['escaped __proto__', large.replace('{', '{"\\u005f_proto__":{"polluted":true},')],
      ['constructor.prototype', large.replace('"users":[{', '"users":[{"constructor":{"prototype":{"x":1}},')],
    ] as const) {
      const r = await post(null, { raw });
      expect(r.status, name).toBe(400);
      expect(r.body.message, name).toMatch(/forbidden key/);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await inboxCount(ctx)).toBe(before);
  });

  it('creates a cohort first seen in a webhook; duplicates, stale and out-of-order deltas change nothing', async () => {
    const { ctx } = db();
    // First word of the cohort: an empty batch is enough to create it.
    const first = await post({ ...msg('coh_push', true, 1000, []), cohort_name: 'Pushed cohort' });
    expect(first.status).toBe(200);
    expect(first.ms).toBeLessThan(1000);
    await applyAndDeliver(ctx);
    const cohort = await ctx.store.db
      .selectFrom('cohorts')
      .selectAll()
      .where('id', '=', 'coh_push')
      .executeTakeFirstOrThrow();
    expect(cohort).toMatchObject({ name: 'Pushed cohort', origin: 'webhook', source_id: source.id });
    const sync = await createSync(ctx, { cohortId: 'coh_push', destinationId: destId, cadence: 'manual' });

    const enter = msg('coh_push', true, 2000, ['u1', 'u2']);
    const a = await post(enter);
    const b = await post(enter);
    expect(a.body).toMatchObject({ ok: true, duplicate: false });
    expect(b.body).toMatchObject({ ok: true, duplicate: true });
    expect(
      await ctx.store.db.selectFrom('webhook_inbox').select('id').where('message_id', '=', enter.message_id).execute(),
    ).toHaveLength(1);
    await applyAndDeliver(ctx);
    expect(tag(sync.tag_key, 'u1')).toBe('1');
    expect(tag(sync.tag_key, 'u2')).toBe('1');

    // An exit computed before the enter arrives late: ignored.
    await post(msg('coh_push', false, 1500, ['u1']));
    // A newer exit for u2 applies.
    await post(msg('coh_push', false, 2500, ['u2']));
    const r = await applyAndDeliver(ctx);
    expect(r.applied).toBe(2);
    expect(tag(sync.tag_key, 'u1')).toBe('1');
    expect(tag(sync.tag_key, 'u2')).toBeUndefined();

    // Leave then enter again (in order), and enter arriving before an older leave (out of order).
    await post(msg('coh_push', false, 3000, ['u3']));
    await post(msg('coh_push', true, 3001, ['u3']));
    await post(msg('coh_push', true, 4001, ['u4']));
    await post(msg('coh_push', false, 4000, ['u4']));
    await applyAndDeliver(ctx);
    expect(tag(sync.tag_key, 'u3')).toBe('1');
    expect(tag(sync.tag_key, 'u4')).toBe('1');
    const rows = await ledgerRows(ctx, sync.id);
    expect(rows.filter((x) => x.desired === 1).map((x) => x.external_id)).toEqual(['u1', 'u3', 'u4']);

    // Re-applying an applied message is a no-op.
    const applied = await ctx.store.db
      .selectFrom('webhook_inbox')
      .select('id')
      .where('message_id', '=', enter.message_id)
      .executeTakeFirstOrThrow();
    expect(await applyWebhookMessage(ctx, applied.id)).toEqual({ destinationIds: [] });
  });

  it('a cohort synced by destinations with different id mappings: each gets the ids of its own mapping', async () => {
    const { ctx } = db();
    const byEmail = await addDestination(ctx, {
      name: 'push-app by email',
      app_id: BY_EMAIL_APP.appId,
      api_key: BY_EMAIL_APP.apiKey,
      api_url: onesignal.url,
      source_id: source.id,
      external_id_property: 'email',
      tag_key_template: 'amp_email_{cohort_id}',
    });
    await post({ ...msg('coh_map', true, 1000, []) });
    await applyAndDeliver(ctx);
    const byUserId = await createSync(ctx, { cohortId: 'coh_map', destinationId: destId, cadence: 'manual' });
    const byMail = await createSync(ctx, { cohortId: 'coh_map', destinationId: byEmail.id, cadence: 'manual' });

    const users = [
      { user_id: 'a', user_properties: { email: 'c' } },
      { user_id: 'b', user_properties: { email: 'd' } },
      { user_id: 'u1', user_properties: {} }, // no email: only the user_id mapping carries u1
    ];
    expect((await post({ ...msg('coh_map', true, 2000, []), users })).status).toBe(200);
    const r = await applyAndDeliver(ctx);
    expect(r.failed).toBe(0);
    expect((await ledgerRows(ctx, byUserId.id)).filter((x) => x.desired === 1).map((x) => x.external_id)).toEqual([
      'a',
      'b',
      'u1',
    ]);
    expect((await ledgerRows(ctx, byMail.id)).filter((x) => x.desired === 1).map((x) => x.external_id)).toEqual([
      'c',
      'd',
    ]);
    expect([
      tag(byUserId.tag_key, 'a'),
      tag(byMail.tag_key, 'c', BY_EMAIL_APP.appId),
      tag(byMail.tag_key, 'a', BY_EMAIL_APP.appId),
    ]).toEqual(['1', '1', undefined]);

    // A leave carries the same users: each mapping removes its own ids.
    await post({ ...msg('coh_map', false, 3000, []), users: users.slice(0, 1) });
    await applyAndDeliver(ctx);
    expect((await ledgerRows(ctx, byUserId.id)).filter((x) => x.desired === 1).map((x) => x.external_id)).toEqual([
      'b',
      'u1',
    ]);
    expect((await ledgerRows(ctx, byMail.id)).filter((x) => x.desired === 1).map((x) => x.external_id)).toEqual(['d']);
    expect([tag(byUserId.tag_key, 'a'), tag(byMail.tag_key, 'c', BY_EMAIL_APP.appId)]).toEqual([undefined, undefined]);
  });

  it('accepts compute_time and numeric fields, and hands the message to the job queue per source', async () => {
    const { ctx } = db();
    const jobs = createJobQueue(ctx);
    const withJobs = await buildServer({ ctx, jobs });
    const url = await withJobs.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { computed_time: _c, ...rest } = msg('coh_num', true, 5000, ['a']);
      const res = await fetch(url + source.webhook_path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${source.webhook_secret}` },
        body: JSON.stringify({ ...rest, cohort_id: 12345, compute_time: 5000 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { inbox_id: number };
      const row = await ctx.store.db
        .selectFrom('webhook_inbox')
        .selectAll()
        .where('id', '=', body.inbox_id)
        .executeTakeFirstOrThrow();
      expect(row).toMatchObject({ cohort_id: '12345', computed_time: 5_000_000, in_cohort: 1 });
      const queued = (await jobs.list()).filter((j) => j.task === 'webhook.apply');
      expect(queued.map((j) => ({ payload: j.payload, queue: j.queue }))).toContainEqual({
        payload: { inboxId: body.inbox_id },
        queue: `webhooks:${source.id}`,
      });
    } finally {
      await withJobs.close();
      await jobs.stop().catch(() => {});
    }
  });

  it('end to end: the Amplitude emulator pushes membership changes, we ack, apply and deliver', async () => {
    const { ctx } = db();
    const e2eSource = await addSource(ctx, {
      name: 'emulated-project',
      api_key: E2E_PROJECT.apiKey,
      secret_key: E2E_PROJECT.secretKey,
      api_url: 'http://127.0.0.1:9',
    });
    const amplitude: AmplitudeEmulator = await startAmplitudeEmulator({
      projects: [E2E_PROJECT],
      pollsBeforeReady: 1,
      webhookUrl: base + e2eSource.webhook_path,
      webhookHeaders: { authorization: `Bearer ${e2eSource.webhook_secret}` },
    });
    try {
      await updateSource(ctx, e2eSource.id, { api_url: amplitude.url });
      const dest = await addDestination(ctx, {
        name: 'e2e-app',
        app_id: E2E_APP.appId,
        api_key: E2E_APP.apiKey,
        api_url: onesignal.url,
        source_id: e2eSource.id,
      });
      amplitude.cohorts.upsert({
        id: 'coh_rt',
        name: 'Realtime cohort',
        members: [{ user_id: 'a' }, { user_id: 'b' }],
      });
      await amplitude.webhooksIdle(10_000);
      await applyAndDeliver(ctx);
      const sync = await createSync(ctx, { cohortId: 'coh_rt', destinationId: dest.id, cadence: 'realtime' });
      // The realtime sync's first run is a pull; deltas follow as pushes.
      expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', members: 2, delivered: 2 });

      amplitude.cohorts.addMembers('coh_rt', [{ user_id: 'c' }, { user_id: 'd' }]);
      amplitude.cohorts.removeMembers('coh_rt', ['a']);
      await amplitude.webhooksIdle(10_000);
      const attempts = amplitude.webhookLog();
      expect(attempts.length).toBeGreaterThanOrEqual(3);
      expect(attempts.every((x) => x.status === 200)).toBe(true);
      await applyAndDeliver(ctx);
      expect(tag(sync.tag_key, 'a', E2E_APP.appId)).toBeUndefined();
      expect(tag(sync.tag_key, 'b', E2E_APP.appId)).toBe('1');
      expect(tag(sync.tag_key, 'c', E2E_APP.appId)).toBe('1');
      expect(tag(sync.tag_key, 'd', E2E_APP.appId)).toBe('1');
    } finally {
      await amplitude.close();
    }
  });
});
