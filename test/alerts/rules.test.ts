import { afterAll, beforeAll, expect, it } from 'vitest';
import { addRule, deleteRule, listRules, testRule } from '../../src/app/alert-rules';
import { addChannel, deleteChannel } from '../../src/app/alerts';
import { evaluateAlerts } from '../../src/jobs/alerts';
import { runCli } from '../cli/proc';
import { describeEachDialect } from '../helpers/db';
import { seedDestination, seedStream } from '../helpers/seed';
import { type HttpReceiver, startHttpReceiver } from './receivers';

const settings = {
  publicUrl: null,
  deadLetters: 100,
  budgetPercent: 80,
  realtimeSilenceMs: 86_400_000,
  driftPercent: 5,
};

describeEachDialect('alert rules', (db) => {
  let hook: HttpReceiver;
  beforeAll(async () => {
    hook = await startHttpReceiver();
  });
  afterAll(() => hook.close());

  const heard = (path: string) =>
    hook
      .accepted()
      .filter((r) => r.path === path)
      .map((r) => `${r.body.alert.kind} ${r.body.event}`)
      .sort();

  it('a channel with rules hears only their kinds; one without hears every kind; rules are tested and deleted', async () => {
    const { ctx, url } = db();
    const streams = await addChannel(ctx, { kind: 'webhook', name: 'streams team', url: `${hook.url}/streams` });
    await addChannel(ctx, { kind: 'webhook', name: 'everything', url: `${hook.url}/all` });
    const rule = await addRule(ctx, { channel: 'streams team', kind: 'stream_paused' });
    expect(rule).toMatchObject({ channel_id: streams.id, channel_name: 'streams team', kind: 'stream_paused' });
    await expect(addRule(ctx, { channel: streams.id, kind: 'stream_paused' })).rejects.toThrow(
      /already has a rule for stream_paused/,
    );
    await expect(addRule(ctx, { channel: 'streams team', kind: 'lunch' })).rejects.toThrow(
      /kind: must be one of run_failed/,
    );
    await expect(addRule(ctx, { channel: 'nobody', kind: 'drift' })).rejects.toThrow(/no alert channel "nobody"/);

    await seedDestination(ctx, {
      id: 'dst_rules',
      name: 'Revoked app',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
      status: 'paused',
      status_reason: 'OneSignal rejected the credentials (403)',
    });
    await seedStream(ctx, {
      id: 'str_rules',
      name: 'Push events',
      amplitude_api_key: 'k',
      webhook_secret: 's',
      status: 'paused',
      status_reason: 'Amplitude answered 401',
    });
    await evaluateAlerts(ctx, { settings });
    expect(heard('/streams')).toEqual(['stream_paused opened']);
    expect(heard('/all')).toEqual(['destination_paused opened', 'stream_paused opened']);

    // Resolutions go to the channels that heard the alert open.
    await ctx.store.db.updateTable('streams').set({ status: 'active', status_reason: null }).execute();
    await ctx.store.db.updateTable('destinations').set({ status: 'active', status_reason: null }).execute();
    await evaluateAlerts(ctx, { settings });
    expect(heard('/streams')).toEqual(['stream_paused opened', 'stream_paused resolved']);
    expect(heard('/all')).toHaveLength(4);

    const tested = await testRule(ctx, rule.id);
    expect(tested).toMatchObject({ ok: true, channel_id: streams.id });
    const sample = hook.accepted().at(-1)!;
    expect(sample.path).toBe('/streams');
    expect(sample.body).toMatchObject({ event: 'test', alert: { kind: 'stream_paused' } });

    // The CLI lists, tests and deletes rules; a bad kind is one line and exit 2.
    const listed = await runCli(['--db', url, 'alert', 'rule', 'list', '--json']);
    expect(JSON.parse(listed.stdout).map((r: { id: string }) => r.id)).toEqual([rule.id]);
    const bad = await runCli(['--db', url, 'alert', 'rule', 'add', '--channel', 'everything', '--kind', 'lunch']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trimEnd().split('\n')).toHaveLength(1);
    const added = await runCli(['--db', url, 'alert', 'rule', 'add', '--channel', 'everything', '--kind', 'drift']);
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/drift alerts → everything/);

    expect((await deleteRule(ctx, rule.id)).id).toBe(rule.id);
    await expect(deleteRule(ctx, rule.id)).rejects.toThrow(/no alert rule/);
    await deleteChannel(ctx, 'everything');
    expect(await listRules(ctx)).toEqual([]);
  });
});
