import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { configYaml } from '../helpers/config-yaml';
import { describeEachDialect } from '../helpers/db';
import { expectFitsCards, expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';
const AMP = { apiKey: `amp-uicfg-${crypto.randomUUID()}`, secretKey: `amp-secret-${crypto.randomUUID()}` };
const OS = { appId: crypto.randomUUID(), apiKey: `os-uicfg-${crypto.randomUUID()}` };
// The UI reads a file's variables from the server's environment.
process.env.UICFG_AMP_KEY = AMP.apiKey;
process.env.UICFG_AMP_SECRET = AMP.secretKey;
process.env.UICFG_OS_KEY = OS.apiKey;

describeEachDialect('web UI: configuration as code', (db) => {
  let amplitude: AmplitudeEmulator;
  let onesignal: OneSignalEmulator;
  let ui: UiSession;

  const yaml = (rate = 1000) =>
    configYaml({
      amplitudeUrl: amplitude.url,
      onesignalUrl: onesignal.url,
      appId: OS.appId,
      vars: { ampKey: 'UICFG_AMP_KEY', ampSecret: 'UICFG_AMP_SECRET', osKey: 'UICFG_OS_KEY' },
      cohort: 'coh_ui',
      rate,
    });

  beforeAll(async () => {
    if (!runBrowser) return;
    amplitude = await startAmplitudeEmulator({ projects: [AMP], pollsBeforeReady: 1 });
    onesignal = await startOneSignalEmulator({ apps: [OS], users: { mode: 'seeded', ids: ['u1'] } });
    amplitude.cohorts.upsert({ id: 'coh_ui', name: 'UI cohort', members: [{ user_id: 'u1' }] });
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await amplitude?.close();
    await onesignal?.close();
  });

  it.skipIf(!runBrowser)(
    'pastes a file, plans it, confirms, applies; the export shows it; the same file again plans no changes',
    async () => {
      const { page } = ui;
      const { dialect, ctx } = db();
      await page.getByRole('link', { name: 'Configuration', exact: true }).click();
      await page.getByRole('heading', { name: 'Configuration', exact: true }).waitFor();

      await page.getByLabel('Configuration file (YAML)').fill(yaml());
      await page.getByRole('button', { name: 'Plan', exact: true }).click();
      await page.getByRole('heading', { name: 'Plan', exact: true }).waitFor();
      const plan = page.locator('table.plan');
      expect(await plan.getByRole('row').count()).toBe(4);
      expect(await plan.getByRole('row', { name: /source "Production"/ }).textContent()).toMatch(/^\s*create/);
      await plan.getByText(`api_key: from \${UICFG_OS_KEY}`).waitFor();
      await page.getByText('Plan: 3 to create, 0 to change, 0 to delete.').waitFor();
      expect(await page.content()).not.toContain(OS.apiKey);
      await expectFitsCards(page);
      await shot(page, `configuration-plan-${dialect}`);

      await page.getByRole('button', { name: 'Apply…' }).click();
      await page.getByRole('heading', { name: 'Apply this configuration?' }).waitFor();
      expect(await ctx.store.db.selectFrom('destinations').select('id').execute()).toEqual([]);
      await page.getByRole('button', { name: 'Apply configuration' }).click();
      await page.getByRole('heading', { name: 'Applied' }).waitFor();
      await page.getByText('Applied ampsignal.yaml: 3 created, 0 changed, 0 deleted').waitFor();
      await page.getByText(/created sync "coh_ui → Main app" \(syn_/).waitFor();
      const current = await page.locator('#current-yaml').textContent();
      expect(current).toContain('name: Main app');
      expect(current).toContain(`api_key: \${DESTINATION_MAIN_APP_API_KEY}`);
      await expectTablesFit(page);
      await shot(page, `configuration-applied-${dialect}`);
      const sync = await ctx.store.db.selectFrom('syncs').selectAll().executeTakeFirstOrThrow();
      expect(sync.segment_id).not.toBeNull();

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download ampsignal.yaml' }).click(),
      ]);
      expect(download.suggestedFilename()).toBe('ampsignal.yaml');
      expect(readFileSync((await download.path())!, 'utf8')).toBe(current);

      // A changed field shows as from → to; the same file a second time plans nothing, offers no apply.
      await page.getByLabel('Configuration file (YAML)').fill(yaml(50));
      await page.getByRole('button', { name: 'Plan', exact: true }).click();
      await plan.getByText('rate_limit_per_second: 1000 → 50').waitFor();
      expect(await plan.getByRole('row', { name: /destination "Main app"/ }).textContent()).toMatch(/^\s*change/);
      await page.getByRole('button', { name: 'Apply…' }).click();
      await page.getByRole('button', { name: 'Apply configuration' }).click();
      await page.getByText('Applied ampsignal.yaml: 0 created, 1 changed, 0 deleted').waitFor();
      await page.getByLabel('Configuration file (YAML)').fill(yaml(50));
      await page.getByRole('button', { name: 'Plan', exact: true }).click();
      await page.getByText('No changes: the database matches ampsignal.yaml.').waitFor();
      expect(await page.getByRole('button', { name: 'Apply…' }).count()).toBe(0);
      const dest = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
      expect(Number(dest.rate_limit_per_second)).toBe(50);
      expect(ui.scriptErrors).toEqual([]);
    },
    90_000,
  );

  it.skipIf(!runBrowser)('a bad file is refused naming its line, the text kept in the box', async () => {
    const { page } = ui;
    const bad = yaml().replace('    destination: Main app\n', '    destination: Main app\n    cadence: weekly\n');
    await page.goto(`${ui.base}/configuration`);
    await page.getByLabel('Configuration file (YAML)').fill(bad);
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/configuration/plan')),
      page.getByRole('button', { name: 'Plan', exact: true }).click(),
    ]);
    expect(res.status()).toBe(400);
    await page
      .getByRole('alert')
      .getByText(/^ampsignal\.yaml:17: syncs\[0\]\.cadence: .*must be one of/)
      .waitFor();
    expect(await page.getByLabel('Configuration file (YAML)').inputValue()).toBe(bad);
    await shot(page, `configuration-error-${db().dialect}`);
  });
});
