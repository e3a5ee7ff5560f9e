import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addRule, listRules } from '../../src/app/alert-rules';
import { addChannel } from '../../src/app/alerts';
import { monthKey } from '../../src/connectors/amplitude/budget';
import type { AlertSettings } from '../../src/jobs/alert-conditions';
import { evaluateAlerts, type SendPolicy } from '../../src/jobs/alerts';
import { buildServer } from '../../src/server/app';
import { runCli } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination, seedSource, seedStream, seedStreamEvents, seedSync } from '../helpers/seed';
import { type HttpReceiver, startHttpReceiver } from './receivers';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
// The defaults a channel without a threshold of its own hears at.
const settings: AlertSettings = {
  publicUrl: null,
  deadLetters: 5,
  budgetPercent: 80,
  realtimeSilenceMs: 6 * HOUR,
  driftPercent: 5,
};
const FAST: SendPolicy = {
  tries: 1,
  backoff: { baseMs: 5, capMs: 20 },
  laterBackoff: { baseMs: 60_000, capMs: HOUR },
  maxAttempts: 2,
};
const TOKEN = 'thresholds-admin-token-0123456789';

let hook: HttpReceiver;
beforeAll(async () => {
  hook = await startHttpReceiver();
});
afterAll(() => hook.close());

/**
 * Per-rule thresholds: channel "tight" has a rule of each threshold kind with a threshold of its
 * own (set through the API, the CLI and the app); "loose" has a dead-letters rule at the default;
 * "all" has no rules. Each hears a condition when it crosses its own line, not below, once.
 */
describeEachDialect('alert rules with thresholds of their own', (db) => {
  let base = '';
  let app: FastifyInstance;
  const evaluate = (now = Date.now()) => evaluateAlerts(db().ctx, { now, settings, policy: FAST });
  /** What a channel heard, as "kind event", in order. */
  const heard = (channel: string) =>
    hook
      .accepted()
      .filter((r) => r.path === `${base}/${channel}`)
      .map((r) => `${r.body.alert.kind} ${r.body.event}`);

  beforeAll(async () => {
    const { ctx, dialect } = db();
    base = `/thresholds/${dialect}`;
    for (const name of ['tight', 'loose', 'all'])
      await addChannel(ctx, { kind: 'webhook', name, url: `${hook.url}${base}/${name}` });
    app = await buildServer({ ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(() => app?.close());

  it('each shell sets a threshold on a rule; a kind without one, or one out of range, is refused', async () => {
    const { ctx, url } = db();
    const api = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/api/v1/alert-rules`;
    const post = (body: unknown) =>
      fetch(api, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await post({ channel: 'tight', kind: 'dead_letters', threshold: 2 });
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({ kind: 'dead_letters', threshold: 2 });
    const refused = await post({ channel: 'tight', kind: 'run_failed', threshold: 3 });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toContain(
      'threshold: run_failed alerts have no threshold',
    );
    expect((await post({ channel: 'tight', kind: 'drift', threshold: 120 })).status).toBe(400);

    const ruleAdd = (channel: string, kind: string, ...more: string[]) =>
      runCli(['--db', url, 'alert', 'rule', 'add', '--channel', channel, '--kind', kind, ...more]);
    const cli = await ruleAdd('tight', 'download_budget', '--threshold', '50');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/download_budget alerts at 50 % → tight/);
    expect((await ruleAdd('tight', 'drift')).code).toBe(0);
    expect((await ruleAdd('loose', 'dead_letters')).code).toBe(0);
    const wrong = await ruleAdd('loose', 'realtime_silent', '--threshold', 'soon');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain('threshold: must be a number');

    // The drift rule added without a threshold follows the default; replace it with one of 20 %.
    const drift = (await listRules(ctx)).find((r) => r.kind === 'drift')!;
    expect(drift.threshold).toBeNull();
    await ctx.store.db.deleteFrom('alert_rules').where('id', '=', drift.id).execute();
    await addRule(ctx, { channel: 'tight', kind: 'drift', threshold: 20 });
    await addRule(ctx, { channel: 'tight', kind: 'realtime_silent', threshold: 60 });
    const listed = await runCli(['--db', url, 'alert', 'rule', 'list']);
    expect(listed.stdout).toContain('realtime_silent alerts at 60 minutes → tight');
    expect(listed.stdout).toMatch(/dead_letters alerts → loose/);
  }, 60_000);

  it('dead letters: a rule at 2 hears 3 and not 2; the default (5) is heard at 6 by the others', async () => {
    const { ctx } = db();
    await seedStream(ctx, { id: 'str_t', name: 'Push events', amplitude_api_key: 'k', webhook_secret: 's' });
    const dead = (ids: string[]) =>
      seedStreamEvents(
        ctx,
        'str_t',
        ids.map((event_id) => ({ event_id, status: 'dead', reason: 'bad user_id' })),
      );
    await dead(['e1', 'e2']);
    await evaluate();
    expect([heard('tight'), heard('loose'), heard('all')]).toEqual([[], [], []]);
    await dead(['e3']);
    await evaluate();
    await evaluate();
    expect([heard('tight'), heard('loose'), heard('all')]).toEqual([['dead_letters opened'], [], []]);
    await dead(['e4', 'e5', 'e6']);
    await evaluate();
    expect([heard('tight'), heard('loose'), heard('all')]).toEqual([
      ['dead_letters opened'],
      ['dead_letters opened'],
      ['dead_letters opened'],
    ]);
    await ctx.store.db
      .updateTable('stream_events')
      .set({ status: 'pending' })
      .where('stream_id', '=', 'str_t')
      .execute();
    await evaluate();
    for (const c of ['tight', 'loose', 'all'])
      expect(heard(c)).toEqual(['dead_letters opened', 'dead_letters resolved']);
  });

  it('download budget: a rule at 50 % hears 5 of 10 and not 4; the default (80 %) is not reached', async () => {
    const { ctx } = db();
    const now = Date.UTC(2031, 4, 20, 12);
    await seedSource(ctx, { id: 'src_t', name: 'Prod project', download_budget: 10, created_at: now });
    const downloads = (n: number) =>
      ctx.store.db
        .insertInto('downloads')
        .values(
          Array.from({ length: n }, () => ({
            source_id: 'src_t',
            cohort_id: 'c1',
            run_id: null,
            month: monthKey(now),
            status: 'completed',
            requested_at: now,
          })),
        )
        .execute();
    await downloads(4);
    await evaluate(now);
    expect(heard('tight').filter((h) => h.startsWith('download_budget'))).toEqual([]);
    await downloads(1);
    await evaluate(now);
    expect(heard('tight').filter((h) => h.startsWith('download_budget'))).toEqual(['download_budget opened']);
    expect(heard('all').filter((h) => h.startsWith('download_budget'))).toEqual([]);
    const [alert] = hook
      .accepted()
      .filter((r) => r.path === `${base}/tight` && r.body.alert.kind === 'download_budget');
    expect(alert!.body.alert.message).toContain('alert at 50%');
  });

  it('real-time silence: a rule at 60 minutes hears 61 and not 59; the default (6 h) is not reached', async () => {
    const { ctx } = db();
    const now = Date.now();
    await seedDestination(ctx, {
      id: 'dst_t',
      name: 'Dest',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
    });
    await seedCohort(ctx, { id: 'coh_t', name: 'Cohort t' });
    await seedSync(ctx, {
      id: 'syn_t',
      cohort_id: 'coh_t',
      destination_id: 'dst_t',
      tag_key: 'amp_cohort_t',
      cadence: 'realtime',
      created_at: now,
    });
    await evaluate(now + 59 * MINUTE);
    expect(heard('tight').filter((h) => h.startsWith('realtime'))).toEqual([]);
    await evaluate(now + 61 * MINUTE);
    expect(heard('tight').filter((h) => h.startsWith('realtime'))).toEqual(['realtime_silent opened']);
    expect(heard('all').filter((h) => h.startsWith('realtime'))).toEqual([]);
    const [alert] = hook
      .accepted()
      .filter((r) => r.path === `${base}/tight` && r.body.alert.kind === 'realtime_silent');
    expect(alert!.body.alert.message).toContain("expected one at least every 60 min (an alert rule's threshold)");
    await ctx.store.db.updateTable('syncs').set({ cadence: 'daily' }).where('id', '=', 'syn_t').execute();
  });

  it('read-back drift: a rule at 20 % hears a 75 % match and not 85 %; the default (5 %) hears both', async () => {
    const { ctx } = db();
    const verified = (rate: number) =>
      ctx.store.db
        .updateTable('syncs')
        .set({ verify_match_rate: rate, verified_at: Date.now() })
        .where('id', '=', 'syn_t')
        .execute();
    await verified(0.85);
    await evaluate();
    expect(heard('tight').filter((h) => h.startsWith('drift'))).toEqual([]);
    expect(heard('all').filter((h) => h.startsWith('drift'))).toEqual(['drift opened']);
    await verified(0.75);
    await evaluate();
    expect(heard('tight').filter((h) => h.startsWith('drift'))).toEqual(['drift opened']);
    await verified(1);
    await evaluate();
    expect(heard('tight').filter((h) => h.startsWith('drift'))).toEqual(['drift opened', 'drift resolved']);
    expect(heard('all').filter((h) => h.startsWith('drift'))).toEqual(['drift opened', 'drift resolved']);
  });
});
