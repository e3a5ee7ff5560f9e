import { afterAll, beforeAll, expect, it } from 'vitest';
import { addChannel, deleteChannel, listAlerts } from '../../src/app/alerts';
import { monthKey } from '../../src/connectors/amplitude/budget';
import { type AlertSettings, alertSettings } from '../../src/jobs/alert-conditions';
import { evaluateAlerts, type SendPolicy, sendDueNotifications } from '../../src/jobs/alerts';
import type { Context } from '../../src/store';
import { LEASE_MS } from '../../src/store/leases';
import { describeEachDialect } from '../helpers/db';
import {
  seedCohort,
  seedDestination,
  seedSource,
  seedStream,
  seedStreamEvents,
  seedSync as seedSyncRow,
} from '../helpers/seed';
import { waitFor } from '../jobs/helpers';
import { type HttpReceiver, startHttpReceiver } from './receivers';

const HOUR = 3_600_000;
const settings: AlertSettings = {
  publicUrl: 'https://ampsignal.example.test',
  deadLetters: 2,
  budgetPercent: 80,
  realtimeSilenceMs: 6 * HOUR,
  driftPercent: 5,
};
const FAST: SendPolicy = {
  tries: 3,
  backoff: { baseMs: 5, capMs: 20 },
  laterBackoff: { baseMs: 60_000, capMs: HOUR },
  maxAttempts: 4,
};

let hook: HttpReceiver;
beforeAll(async () => {
  hook = await startHttpReceiver();
});
afterAll(() => hook.close());

/** Each dialect's channel posts to a path of its own on the one receiver. */
let path = '';

/** Requests for one condition, answered or not. */
function sendsOf(condition: string) {
  return hook.received.filter((r) => r.path === path && r.body.alert?.condition === condition);
}

/** What the receiver accepted for one condition, as [event, message] pairs. */
function told(condition: string): Array<[string, string]> {
  return sendsOf(condition)
    .filter((r) => r.status === 200)
    .map((r) => [r.body.event, r.body.alert.message]);
}

async function seedSync(ctx: Context, id: string, fields: { cadence?: string; created_at?: number } = {}) {
  await seedDestination(ctx, {
    id: `dst_${id}`,
    name: `Dest ${id}`,
    app_id: crypto.randomUUID(),
    api_url: 'http://127.0.0.1:9',
    api_key: 'k',
  });
  await seedCohort(ctx, { id: `coh_${id}`, name: `Cohort ${id}` });
  await seedSyncRow(ctx, {
    id: `syn_${id}`,
    cohort_id: `coh_${id}`,
    destination_id: `dst_${id}`,
    tag_key: `amp_cohort_${id}`,
    cadence: fields.cadence ?? 'daily',
    created_at: fields.created_at ?? Date.now(),
  });
}

describeEachDialect('alert conditions', (db) => {
  let channelId: string;
  const evaluate = (now = Date.now(), s: AlertSettings = settings) =>
    evaluateAlerts(db().ctx, { now, settings: s, policy: FAST });

  beforeAll(async () => {
    path = `/conditions/${db().dialect}`;
    channelId = (await addChannel(db().ctx, { kind: 'webhook', name: 'hook', url: `${hook.url}${path}` })).id;
  });

  it('dead letters above the threshold alert, and clear when they are dealt with', async () => {
    const { ctx } = db();
    await seedStream(ctx, { id: 'str_dl', name: 'Push events', amplitude_api_key: 'k', webhook_secret: 's' });
    await seedStreamEvents(ctx, 'str_dl', [
      { event_id: 'e1', status: 'dead', reason: 'bad user_id' },
      { event_id: 'e2', status: 'dead', reason: 'bad user_id' },
    ]);
    await evaluate();
    expect(told('dead_letters:str_dl')).toEqual([]);
    await seedStreamEvents(ctx, 'str_dl', [{ event_id: 'e3', status: 'dead', reason: 'bad user_id' }]);
    await evaluate();
    expect(told('dead_letters:str_dl')).toEqual([['opened', expect.stringContaining('holds 3 dead letter(s)')]]);
    const [open] = await listAlerts(ctx);
    expect(open).toMatchObject({
      kind: 'dead_letters',
      link: 'https://ampsignal.example.test/streams/str_dl/dead-letters',
      details: { dead_letters: 3, threshold: 2 },
    });
    // One more keeps the one alert open (its count kept current) and tells nobody again.
    await seedStreamEvents(ctx, 'str_dl', [{ event_id: 'e4', status: 'dead', reason: 'bad user_id' }]);
    await evaluate();
    expect(told('dead_letters:str_dl')).toHaveLength(1);
    expect((await listAlerts(ctx))[0]!.details).toMatchObject({ dead_letters: 4 });
    await ctx.store.db
      .updateTable('stream_events')
      .set({ status: 'pending' })
      .where('stream_id', '=', 'str_dl')
      .execute();
    await evaluate();
    expect(told('dead_letters:str_dl').map(([e]) => e)).toEqual(['opened', 'resolved']);
  });

  it("a source at 80 % of this month's download budget alerts, and clears with the new month", async () => {
    const { ctx } = db();
    const now = Date.UTC(2031, 4, 20, 12);
    await seedSource(ctx, { id: 'src_budget', name: 'Prod project', download_budget: 5, created_at: now });
    const download = (status: string) => ({
      source_id: 'src_budget',
      cohort_id: 'c1',
      run_id: null,
      month: monthKey(now),
      status,
      requested_at: now,
    });
    // 3 counted of 5 (60 %); a refused request does not count.
    await ctx.store.db
      .insertInto('downloads')
      .values([download('completed'), download('failed'), download('requested'), download('refused')])
      .execute();
    await evaluate(now);
    expect(told('download_budget:src_budget')).toEqual([]);
    await ctx.store.db.insertInto('downloads').values(download('completed')).execute();
    await evaluate(now);
    expect(told('download_budget:src_budget')).toEqual([
      ['opened', expect.stringContaining('has used 4 of its 5 Amplitude cohort downloads for 2031-05 (80%')],
    ]);
    await evaluate(Date.UTC(2031, 5, 1, 0, 5));
    expect(told('download_budget:src_budget').map(([e]) => e)).toEqual(['opened', 'resolved']);
  });

  it('a real-time sync with no cohort webhook for longer than expected alerts, and clears when one arrives', async () => {
    const { ctx } = db();
    const now = Date.now();
    await seedSync(ctx, 'rt', { cadence: 'realtime', created_at: now - 5 * HOUR });
    await seedSync(ctx, 'daily', { cadence: 'daily', created_at: now - 50 * HOUR });
    await evaluate(now);
    expect(told('realtime_silent:syn_rt')).toEqual([]);
    await evaluate(now + 2 * HOUR);
    expect(told('realtime_silent:syn_rt')).toEqual([
      ['opened', expect.stringContaining('no cohort webhook has arrived since it was created 7 h ago')],
    ]);
    // A daily sync expects no webhooks at all.
    expect(told('realtime_silent:syn_daily')).toEqual([]);
    await ctx.store.db
      .insertInto('webhook_inbox')
      .values({
        source_id: 'src_x',
        message_id: 'm1',
        cohort_id: 'coh_rt',
        cohort_name: 'Cohort rt',
        in_cohort: 1,
        computed_time: now + 2 * HOUR,
        body: '{"users":[]}',
        body_deflated: null,
        received_at: now + 2 * HOUR,
        applied_at: now + 2 * HOUR,
        error: null,
      })
      .execute();
    await evaluate(now + 2 * HOUR + 60_000);
    expect(told('realtime_silent:syn_rt').map(([e]) => e)).toEqual(['opened', 'resolved']);
    // Silent again for longer than expected: a new episode, with when the last one came.
    await evaluate(now + 9 * HOUR);
    expect(told('realtime_silent:syn_rt').map(([e, m]) => [e, /last cohort webhook arrived 7 h ago/.test(m)])).toEqual([
      ['opened', false],
      ['resolved', false],
      ['opened', true],
    ]);
  });

  it('read-back drift: the match rate verify writes opens an alert below the line and a better one clears it', async () => {
    const { ctx } = db();
    await seedSync(ctx, 'drift');
    const verified = (rate: number) =>
      ctx.store.db
        .updateTable('syncs')
        .set({ verify_match_rate: rate, verified_at: Date.now() })
        .where('id', '=', 'syn_drift')
        .execute();
    await evaluate();
    expect(told('drift:syn_drift')).toEqual([]);
    await verified(0.96);
    await evaluate();
    expect(told('drift:syn_drift')).toEqual([]);
    await verified(0.9);
    await evaluate();
    expect(told('drift:syn_drift')).toEqual([['opened', expect.stringContaining('found 90% of sampled users')]]);
    await verified(0.99);
    await evaluate();
    expect(told('drift:syn_drift').map(([e]) => e)).toEqual(['opened', 'resolved']);
  });

  it('a pass whose look began over a lease ago still holds what it sends: a second evaluator does not send it again', async () => {
    const { ctx } = db();
    await seedDestination(ctx, {
      id: 'dst_stale',
      name: 'Stale look',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
      status: 'paused',
      status_reason: 'OneSignal rejected the credentials (403)',
    });
    const key = 'destination_paused:dst_stale';
    hook.delay(700);
    try {
      // An evaluation whose look at the conditions began long ago (a busy machine) is sending.
      const slow = evaluateAlerts(ctx, { now: Date.now() - 3 * LEASE_MS, settings, policy: FAST, workerId: 'slow' });
      await waitFor(() => sendsOf(key).length === 1, { what: 'the slow pass to send' });
      await sendDueNotifications(ctx, { now: Date.now(), workerId: 'fresh', policy: FAST });
      await slow;
    } finally {
      hook.delay(0);
    }
    expect(sendsOf(key).map((r) => r.body.event)).toEqual(['opened']);
  });

  it('retries a failing channel with the retry policy, sending each notification once', async () => {
    const { ctx } = db();
    const now = Date.now();
    const pause = (id: string) =>
      seedDestination(ctx, {
        id,
        name: `Paused ${id}`,
        app_id: crypto.randomUUID(),
        api_url: 'http://127.0.0.1:9',
        api_key: 'k',
        status: 'paused',
        status_reason: 'OneSignal rejected the credentials (403): Access denied',
      });
    const sends = (id: string) => sendsOf(`destination_paused:${id}`);

    // Two 503s, then accepted: the quick tries inside one send deliver it, with one id throughout.
    hook.failNext(2, 503);
    await pause('dst_blip');
    expect(await evaluate(now)).toMatchObject({ sent: 1, retrying: 0, failed: 0 });
    expect(sends('dst_blip').map((r) => r.status)).toEqual([503, 503, 200]);
    expect(new Set(sends('dst_blip').map((r) => r.headers['idempotency-key'])).size).toBe(1);

    // Down for longer than the quick tries: kept for a later minute, not sent before then.
    hook.failNext(3, 502);
    await pause('dst_down');
    expect(await evaluate(now)).toMatchObject({ sent: 0, retrying: 1 });
    const row = await ctx.store.db
      .selectFrom('alert_notifications as n')
      .innerJoin('alerts as a', 'a.id', 'n.alert_id')
      .select(['n.status', 'n.attempts', 'n.next_attempt_at', 'n.last_error'])
      .where('a.condition_key', '=', 'destination_paused:dst_down')
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_error: 'the webhook answered 502: unavailable' });
    // Full jitter over [0, base] for the first retry.
    expect(Number(row.next_attempt_at)).toBeLessThanOrEqual(now + 60_000);
    await evaluate(now);
    expect(sends('dst_down')).toHaveLength(3);
    expect(await evaluate(now + HOUR)).toMatchObject({ sent: 1 });
    expect(sends('dst_down').map((r) => r.status)).toEqual([502, 502, 502, 200]);

    // A refusal is not retried.
    hook.failNext(1, 400, 'invalid payload');
    await pause('dst_refused');
    expect(await evaluate(now + HOUR)).toMatchObject({ sent: 0, failed: 1 });
    await evaluate(now + 10 * HOUR);
    expect(sends('dst_refused').map((r) => r.status)).toEqual([400]);
    const alert = (await listAlerts(ctx)).find((a) => a.condition === 'destination_paused:dst_refused')!;
    expect(alert.notifications).toEqual({ sent: 0, pending: 0, failed: 1 });
    await ctx.store.db.deleteFrom('destinations').where('id', 'in', ['dst_blip', 'dst_down', 'dst_refused']).execute();
    await evaluate(now + 10 * HOUR);
  });

  it('a "resolved" waits for its "opened" to get through, and a deleted channel is told nothing more', async () => {
    const { ctx } = db();
    // Later than every time the tests above evaluated at, so none of their conditions clears here.
    const now = Date.now() + 11 * HOUR;
    const id = 'dst_flap';
    const sends = () => sendsOf(`destination_paused:${id}`);
    await seedDestination(ctx, {
      id,
      name: 'Flapping',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
      status: 'paused',
      status_reason: 'paused by user',
    });
    hook.failNext(3, 503);
    expect(await evaluate(now)).toMatchObject({ retrying: 1 });
    await ctx.store.db
      .updateTable('destinations')
      .set({ status: 'active', status_reason: null })
      .where('id', '=', id)
      .execute();
    // Resolved while "opened" still waits for its retry: nothing is sent out of order.
    expect(await evaluate(now)).toMatchObject({ resolved: [`destination_paused:${id}`], sent: 0 });
    await evaluate(now + HOUR);
    await evaluate(now + HOUR);
    expect(sends().map((r) => [r.status, r.body.event])).toEqual([
      [503, 'opened'],
      [503, 'opened'],
      [503, 'opened'],
      [200, 'opened'],
      [200, 'resolved'],
    ]);

    await deleteChannel(ctx, channelId);
    await seedStream(ctx, {
      id: 'str_after',
      name: 'After',
      amplitude_api_key: 'k',
      webhook_secret: 's',
      status: 'paused',
      status_reason: 'x',
    });
    const before = hook.received.filter((r) => r.path === path).length;
    expect(await evaluate(now + HOUR)).toMatchObject({ opened: ['stream_paused:str_after'], sent: 0 });
    expect(hook.received.filter((r) => r.path === path)).toHaveLength(before);
  });
});

it('reads the alert settings from the environment and names a bad one', () => {
  expect(alertSettings({})).toEqual({
    publicUrl: null,
    deadLetters: 100,
    budgetPercent: 80,
    realtimeSilenceMs: 24 * HOUR,
    driftPercent: 5,
  });
  expect(
    alertSettings({
      AMPSIGNAL_PUBLIC_URL: 'https://ampsignal.example.com/',
      AMPSIGNAL_ALERT_DEAD_LETTERS: '0',
      AMPSIGNAL_ALERT_REALTIME_SILENCE_MINUTES: '30',
    }),
  ).toMatchObject({ publicUrl: 'https://ampsignal.example.com', deadLetters: 0, realtimeSilenceMs: 30 * 60_000 });
  expect(() => alertSettings({ AMPSIGNAL_PUBLIC_URL: 'ampsignal.example.com' })).toThrow(
    'AMPSIGNAL_PUBLIC_URL must be an http(s) URL such as https://ampsignal.example.com (got "ampsignal.example.com")',
  );
  expect(() => alertSettings({ AMPSIGNAL_ALERT_BUDGET_PERCENT: 'most' })).toThrow(
    'AMPSIGNAL_ALERT_BUDGET_PERCENT must be a number (got "most")',
  );
  expect(() => alertSettings({ AMPSIGNAL_ALERT_DEAD_LETTERS: '2.5' })).toThrow(
    'AMPSIGNAL_ALERT_DEAD_LETTERS must be a whole number',
  );
});
