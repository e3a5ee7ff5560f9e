import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OneSignalEmulator } from '../../src/emulators/onesignal/index';
import { runSync } from '../../src/sync/run';
import { type HttpReceiver, startHttpReceiver } from '../alerts/receivers';
import { describeEachDialect } from '../helpers/db';
import { seedDestination } from '../helpers/seed';
import { cohortSync, range, setupApp } from '../sync/setup';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const HOOK_TOKEN = 'ui-hook-token-PLAINTEXT';

describeEachDialect('web UI: alerts and read-back', (db) => {
  let ui: UiSession;
  let hook: HttpReceiver;
  let emu: OneSignalEmulator | undefined;

  beforeAll(async () => {
    if (!runBrowser) return;
    hook = await startHttpReceiver();
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await hook?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)('lists, adds, tests and deletes alert channels; shows open alerts and the rules', async () => {
    const { page } = ui;
    const { ctx } = db();
    await seedDestination(ctx, {
      id: 'dst_ui_paused',
      name: 'Revoked app',
      app_id: crypto.randomUUID(),
      api_url: 'http://127.0.0.1:9',
      api_key: 'k',
      status: 'paused',
      status_reason: 'OneSignal rejected the credentials (403)',
    });
    await page.getByRole('link', { name: 'Alerts', exact: true }).click();
    await page.getByRole('heading', { name: 'Alerts', exact: true }).waitFor();
    await page.getByText('No channel yet').waitFor();
    await page
      .getByRole('row', { name: /Read-back drift/ })
      .getByText('fewer than 95%')
      .waitFor();

    // A bad submission keeps the values and names the field.
    await page.getByLabel('Kind').selectOption('webhook');
    await page.getByLabel('Channel name').fill('ops hook');
    await page.getByLabel('Webhook URL').fill('not a url');
    await page.getByRole('button', { name: 'Add channel' }).click();
    await page.getByText('must be an http(s) URL').waitFor();
    expect(await page.getByLabel('Channel name').inputValue()).toBe('ops hook');

    await page.getByLabel('Webhook URL').fill(`${hook.url}/ui?token=${HOOK_TOKEN}`);
    await page.getByRole('button', { name: 'Add channel' }).click();
    await page.getByText('Channel added.').waitFor();
    const row = page.getByRole('row', { name: /ops hook/ });
    expect(await row.textContent()).toContain(`${hook.url}/…`);
    expect(await page.content()).not.toContain(HOOK_TOKEN);

    await page.getByLabel('Kind').selectOption('email');
    await page.getByLabel('Channel name').fill('on-call mail');
    await page.getByLabel('SMTP host').fill('smtp.example.test');
    await page.getByLabel('From').fill('ampsignal@example.test');
    await page.getByLabel('To', { exact: true }).fill('oncall@example.test, lead@example.test');
    await page.getByRole('button', { name: 'Add channel' }).click();
    await page.getByText('Channel added.').waitFor();
    expect(await page.getByRole('row', { name: /on-call mail/ }).textContent()).toContain(
      'oncall@example.test,lead@example.test via smtp.example.test:587',
    );

    await row.getByRole('button', { name: 'Send a test alert to ops hook' }).click();
    await row.getByText('Test sent: sent a sample alert to ops hook (webhook)').waitFor();
    expect(hook.accepted().map((r) => [r.path, r.body.event])).toEqual([[`/ui?token=${HOOK_TOKEN}`, 'test']]);

    // A rule: ops hook hears only drift alerts; its test sends a drift sample.
    await page.getByText('No rules: every channel hears every kind of alert.').waitFor();
    await page.getByLabel('Rule: channel').selectOption({ label: 'ops hook' });
    await page.getByLabel('hears').selectOption('drift');
    // A threshold of its own: this channel hears drift above 20 % (the default is 5 %).
    await page.getByLabel('at threshold (optional)').fill('120');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByText('threshold: must be between 0 and 100 % for drift').waitFor();
    await page.getByLabel('Rule: channel').selectOption({ label: 'ops hook' });
    await page.getByLabel('hears').selectOption('drift');
    await page.getByLabel('at threshold (optional)').fill('20');
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByText('Rule added').waitFor();
    const ruleRow = page.getByRole('row', { name: /ops hook drift 20%/ });
    expect(await ctx.store.db.selectFrom('alert_rules').select(['kind', 'threshold']).execute()).toEqual([
      { kind: 'drift', threshold: 20 },
    ]);
    await ruleRow.getByRole('button', { name: 'Test rule: drift alerts to ops hook' }).click();
    await ruleRow.getByText('Test sent: sent a sample drift alert to ops hook (webhook)').waitFor();
    expect(hook.accepted().at(-1)!.body.alert.kind).toBe('drift');
    await page.getByRole('link', { name: 'Delete rule: drift alerts to ops hook' }).click();
    await page.getByRole('button', { name: 'Delete rule' }).click();
    await page.getByText('Rule deleted.').waitFor();
    expect(await ctx.store.db.selectFrom('alert_rules').selectAll().execute()).toEqual([]);

    // The paused destination opens an alert at the next evaluation.
    const { evaluateAlerts } = await import('../../src/jobs/alerts');
    await evaluateAlerts(ctx, {
      settings: {
        publicUrl: null,
        deadLetters: 100,
        budgetPercent: 80,
        realtimeSilenceMs: 86_400_000,
        driftPercent: 5,
      },
    });
    await page.reload();
    await page
      .getByRole('row', { name: /Destination paused: Revoked app/ })
      .getByText('1 sent')
      .waitFor();
    await expectTablesFit(page);
    await shot(page, `alerts-${db().dialect}`);

    await page.getByRole('link', { name: 'Delete ops hook' }).click();
    await page.getByRole('heading', { name: 'Delete channel ops hook?' }).waitFor();
    await page.getByRole('button', { name: 'Delete channel' }).click();
    await page.getByText('Channel deleted.').waitFor();
    expect(await page.getByRole('row', { name: /ops hook/ }).count()).toBe(0);
    const left = await ctx.store.db.selectFrom('alert_channels').select('name').execute();
    expect(left.map((c) => c.name)).toEqual(['on-call mail']);
    expect(ui.scriptErrors).toEqual([]);
  });

  it.skipIf(!runBrowser)(
    "a sync's page shows the last match rate and verifies now",
    async () => {
      const { page, base } = ui;
      const { ctx } = db();
      const setup = await setupApp(ctx, { users: range('u', 0, 3) });
      emu = setup.emu;
      const { sync } = await cohortSync(ctx, setup.dest.id, range('u', 0, 3), 'Verified cohort');
      expect((await runSync(ctx, sync.id)).status).toBe('completed');
      await page.goto(`${base}/syncs/${sync.id}`);
      await page.getByText('Not verified yet').waitFor();

      emu.state.setTags('u1', { [sync.tag_key]: '0' });
      await page.getByLabel('Users to read back').fill('3');
      await page.getByRole('button', { name: 'Verify now' }).click();
      await page.getByTestId('match-rate').waitFor();
      // Three reads at one per second: reload until it is done.
      for (let i = 0; i < 60; i++) {
        if ((await page.getByTestId('match-rate').textContent())?.includes('66.7%')) break;
        await new Promise((r) => setTimeout(r, 250));
        await page.reload();
      }
      expect(await page.getByTestId('match-rate').textContent()).toBe('Last match rate: 66.7%');
      const drift = page.getByRole('row', { name: /^u1 tag/ });
      expect(await drift.textContent()).toContain('tag changed');
      expect(await drift.textContent()).toContain('"0"');
      await shot(page, `sync-verify-${db().dialect}`);
      expect(ui.scriptErrors).toEqual([]);
    },
    60_000,
  );
});
