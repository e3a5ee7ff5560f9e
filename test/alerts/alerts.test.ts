import { afterAll, beforeAll, expect, it } from 'vitest';
import { addChannel, listAlerts } from '../../src/app/alerts';
import { resumeDestination } from '../../src/app/destinations';
import { getDestination } from '../../src/connectors/onesignal/destinations';
import { evaluateAlerts, type SendPolicy } from '../../src/jobs/alerts';
import { approveRun, runSync } from '../../src/sync/run';
import { runCli } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';
import { cohortSync, range, reimport, setupApp } from '../sync/setup';
import { type HttpReceiver, type SmtpReceiver, startHttpReceiver, startSmtpReceiver } from './receivers';

const PUBLIC_URL = 'https://ampsignal.example.test';
const HOOK_TOKEN = 'hook-token-PLAINTEXT-never-shown';
const SMTP = { user: 'alerts@example.test', password: 'smtp-password-PLAINTEXT-never-shown' };
/** Quick in-send retries, so a test of the policy takes milliseconds. */
const FAST: SendPolicy = {
  tries: 3,
  backoff: { baseMs: 5, capMs: 20 },
  laterBackoff: { baseMs: 60_000, capMs: 60 * 60_000 },
  maxAttempts: 12,
};
const settings = {
  publicUrl: PUBLIC_URL,
  deadLetters: 100,
  budgetPercent: 80,
  realtimeSilenceMs: 24 * 3_600_000,
  driftPercent: 5,
};

const closers: Array<{ close(): Promise<void> }> = [];
afterAll(async () => {
  await Promise.all(closers.map((c) => c.close()));
});

/** Two `ampsignal alert evaluate` processes started together on one database. */
async function twoEvaluatorProcesses(url: string): Promise<void> {
  const env = { AMPSIGNAL_PUBLIC_URL: PUBLIC_URL };
  const runs = await Promise.all([
    runCli(['--db', url, 'alert', 'evaluate', '--json'], env, 60_000),
    runCli(['--db', url, 'alert', 'evaluate', '--json'], env, 60_000),
  ]);
  for (const r of runs) expect(r.stderr, r.stderr).toBe('');
  for (const r of runs) expect(r.code).toBe(0);
}

/** Messages per condition at the webhook: condition → events in arrival order. */
function byCondition(hook: HttpReceiver, path: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of hook.accepted().filter((x) => x.path === path)) {
    const list = out.get(r.body.alert.condition) ?? [];
    list.push(r.body.event);
    out.set(r.body.alert.condition, list);
  }
  return out;
}

function mailsByCondition(smtp: SmtpReceiver): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of smtp.mails) {
    const c = m.headers['x-ampsignal-condition']!;
    const list = out.get(c) ?? [];
    list.push(m.headers['x-ampsignal-event']!);
    out.set(c, list);
  }
  return out;
}

describeEachDialect('alerts', (db) => {
  let hook: HttpReceiver;
  let smtp: SmtpReceiver;

  beforeAll(async () => {
    hook = await startHttpReceiver();
    smtp = await startSmtpReceiver(SMTP);
    closers.push(hook, smtp);
    // Slow receivers keep the first evaluator sending while the second one looks at the same
    // notifications: only the leases stop it from sending them too.
    hook.delay(700);
    smtp.delay(700);
  });

  it('a held run and a failed run alert once each by webhook and e-mail, and resolve once, across two evaluator processes', async () => {
    const { ctx, url } = db();
    await addChannel(ctx, { kind: 'webhook', name: 'ops hook', url: `${hook.url}/ops?token=${HOOK_TOKEN}` });
    await addChannel(ctx, {
      kind: 'email',
      name: 'ops mail',
      host: smtp.host,
      port: smtp.port,
      security: 'none',
      user: SMTP.user,
      password: SMTP.password,
      from: 'ampsignal@example.test',
      to: ['oncall@example.test'],
    });

    // A run held by the guard: 3 of 4 confirmed members would be removed.
    const users = range('u', 0, 4);
    const good = await setupApp(ctx, { users });
    closers.push(good.emu);
    const held = await cohortSync(ctx, good.dest.id, users, 'Trial users');
    expect((await runSync(ctx, held.sync.id)).status).toBe('completed');
    await reimport(ctx, held.cohortId, ['u0'], 'Trial users');
    const heldRun = await runSync(ctx, held.sync.id);
    expect(heldRun.status).toBe('held');

    // A failed run: OneSignal refuses the destination's key, which also pauses the destination.
    const bad = await setupApp(ctx, { users, apiKey: 'a-revoked-key' });
    closers.push(bad.emu);
    const failing = await cohortSync(ctx, bad.dest.id, users, 'Churn risk');
    const failedRun = await runSync(ctx, failing.sync.id);
    expect(failedRun.status).toBe('failed');
    const paused = await getDestination(ctx, bad.dest.id);
    expect(paused.status).toBe('paused');

    await twoEvaluatorProcesses(url);

    const heldKey = `run_held:${heldRun.id}`;
    const failedKey = `run_failed:${failing.sync.id}`;
    const pausedKey = `destination_paused:${bad.dest.id}`;
    const opened = new Map([
      [heldKey, ['opened']],
      [failedKey, ['opened']],
      [pausedKey, ['opened']],
    ]);
    expect(byCondition(hook, `/ops?token=${HOOK_TOKEN}`)).toEqual(opened);
    expect(mailsByCondition(smtp)).toEqual(opened);

    // The held alert carries the approve link; the paused one OneSignal's own words.
    const heldMsg = hook.accepted().find((r) => r.body.alert.condition === heldKey)!.body;
    expect(heldMsg.alert.link).toBe(`${PUBLIC_URL}/runs/${heldRun.id}`);
    expect(heldMsg.alert.message).toContain(`${PUBLIC_URL}/runs/${heldRun.id}`);
    expect(heldMsg.alert.message).toContain('would remove 3 of 4 confirmed member(s)');
    const pausedMsg = hook.accepted().find((r) => r.body.alert.condition === pausedKey)!.body;
    expect(paused.status_reason).toMatch(/OneSignal rejected the credentials/);
    expect(pausedMsg.alert.message).toContain(paused.status_reason);
    const failedMsg = hook.accepted().find((r) => r.body.alert.condition === failedKey)!.body;
    expect(failedMsg.alert.message).toContain(failedRun.id);
    // Each e-mail came over the SMTP login, to the recipient, once per notification id.
    expect(smtp.mails.every((m) => m.user === SMTP.user && m.to.join() === 'oncall@example.test')).toBe(true);
    expect(new Set(smtp.mails.map((m) => m.headers['message-id'])).size).toBe(3);
    expect(hook.accepted().every((r) => r.headers['idempotency-key'] === r.body.id)).toBe(true);

    const open = await listAlerts(ctx);
    expect(open.map((a) => a.condition).sort()).toEqual([failedKey, heldKey, pausedKey].sort());
    expect(open.every((a) => a.notifications.sent === 2 && a.notifications.pending === 0)).toBe(true);

    // Nothing changed: evaluating again tells nobody anything.
    await evaluateAlerts(ctx, { settings, policy: FAST });
    expect(hook.accepted()).toHaveLength(3);
    expect(smtp.mails).toHaveLength(3);

    // Approval, and recovery: the key fixed, the destination resumed, a run that completes.
    expect((await approveRun(ctx, heldRun.id)).status).toBe('completed');
    await ctx.store.db
      .updateTable('destinations')
      .set({ api_key_enc: ctx.secrets.encrypt(bad.apiKey) })
      .where('id', '=', bad.dest.id)
      .execute();
    await resumeDestination(ctx, bad.dest.id);
    expect((await runSync(ctx, failing.sync.id)).status).toBe('completed');

    await twoEvaluatorProcesses(url);
    const both = new Map([
      [heldKey, ['opened', 'resolved']],
      [failedKey, ['opened', 'resolved']],
      [pausedKey, ['opened', 'resolved']],
    ]);
    expect(byCondition(hook, `/ops?token=${HOOK_TOKEN}`)).toEqual(both);
    expect(mailsByCondition(smtp)).toEqual(both);
    expect(await listAlerts(ctx)).toEqual([]);
    const all = await listAlerts(ctx, { status: 'all' });
    expect(all.filter((a) => a.status === 'resolved')).toHaveLength(3);

    await evaluateAlerts(ctx, { settings, policy: FAST });
    expect(hook.accepted()).toHaveLength(6);
    expect(smtp.mails).toHaveLength(6);
  });

  it('two evaluations at once in one process open and resolve each alert once', async () => {
    const { ctx } = db();
    const r = await startHttpReceiver();
    closers.push(r);
    await addChannel(ctx, { kind: 'slack', name: 'race slack', url: `${r.url}/race` });
    await ctx.store.db
      .insertInto('streams')
      .values({
        id: 'str_race',
        name: 'Race stream',
        amplitude_api_key_enc: ctx.secrets.encrypt('k'),
        region: 'us',
        amplitude_url: null,
        webhook_secret_enc: ctx.secrets.encrypt('s'),
        event_names: null,
        status: 'paused',
        status_reason: 'Amplitude answered 401: Invalid API key',
        duplicates: 0,
        forwarded_total: 0,
        created_at: Date.now(),
      })
      .execute();
    const race = () =>
      Promise.all([0, 1, 2].map(() => evaluateAlerts(ctx, { settings, policy: FAST, workerId: crypto.randomUUID() })));
    const first = await race();
    expect(first.flatMap((x) => x.opened).filter((k) => k === 'stream_paused:str_race')).toHaveLength(1);
    const texts = () => r.accepted().filter((x) => x.body.text.includes('Race stream'));
    await expect.poll(() => texts().length).toBe(1);
    expect(texts()[0]!.body.text).toContain('Amplitude answered 401: Invalid API key');

    await ctx.store.db
      .updateTable('streams')
      .set({ status: 'active', status_reason: null })
      .where('id', '=', 'str_race')
      .execute();
    const second = await race();
    expect(second.flatMap((x) => x.resolved).filter((k) => k === 'stream_paused:str_race')).toHaveLength(1);
    await race();
    expect(texts().map((x) => x.body.text.split('\n')[0])).toEqual([
      ':rotating_light: *[ALERT] Stream paused: Race stream*',
      ':white_check_mark: *[RESOLVED] Stream paused: Race stream*',
    ]);
  });
});
