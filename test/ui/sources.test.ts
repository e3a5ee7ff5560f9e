import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { describeEachDialect } from '../helpers/db';
import { clipboardText, expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const AMP = { apiKey: 'ui-amp-api-key', secretKey: 'ui-amp-secret-key' };

describeEachDialect('web UI: Amplitude source set-up', (db) => {
  let amp: AmplitudeEmulator;
  let ui: UiSession;

  beforeAll(async () => {
    if (!runBrowser) return;
    amp = await startAmplitudeEmulator({
      projects: [AMP],
      cohorts: [
        { id: 'ui_power', name: 'Power users', members: [{ user_id: 'p1' }, { user_id: 'p2' }, { user_id: 'p3' }] },
        { id: 'ui_churn', name: 'Churn risk', members: [{ user_id: 'c1' }] },
      ],
    });
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await amp?.close();
  });

  it.skipIf(!runBrowser)(
    'adds a source, copies the webhook URL and secret that Amplitude then uses, refreshes its cohorts and edits it',
    async () => {
      const { page, base } = ui;
      await page.getByRole('link', { name: 'Sources', exact: true }).click();
      await page.getByRole('link', { name: 'Add Amplitude source' }).click();

      // A missing key is named by its field; what was typed stays.
      await page.getByLabel('Name', { exact: true }).fill('Main project');
      await page.getByLabel('Project API key').fill(AMP.apiKey);
      await page.getByRole('button', { name: 'Save source' }).click();
      await page
        .locator('.field.invalid', { has: page.getByLabel('Project secret key') })
        .getByText('is required (the project secret key)')
        .waitFor();
      expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('Main project');

      await page.getByLabel('Project API key').fill(AMP.apiKey);
      await page.getByLabel('Project secret key').fill(AMP.secretKey);
      await page.getByLabel('Data region').selectOption('eu');
      await page.getByLabel(/Behavioral Cohorts API URL/).fill(amp.url);
      await page.getByRole('button', { name: 'Save source' }).click();
      await page.getByRole('heading', { name: 'Source: Main project' }).waitFor();
      await page.getByText('Source saved.').waitFor();

      // The webhook set-up: the URL and header to paste, each with a copy button.
      const url = (await page.locator('#webhook-url').textContent())?.trim() ?? '';
      expect(url).toMatch(new RegExp(`^${base}/hooks/amplitude/cohorts/src_[\\w-]+$`));
      await page.getByRole('button', { name: 'Copy Webhook URL' }).click();
      await expect.poll(() => clipboardText(page)).toBe(url);
      await page.getByRole('button', { name: 'Copy Header' }).click();
      const header = await clipboardText(page);
      expect(header).toMatch(/^Authorization: Bearer \S{16,}$/);

      // Refresh: the project's cohorts are listed (and stored) with their sizes.
      await page.getByRole('button', { name: 'Refresh cohorts from Amplitude' }).click();
      await page.getByText('2 cohort(s) listed from Amplitude.').waitFor();
      const power = page.getByRole('row', { name: /Power users/ });
      expect(await power.locator('td.num').textContent()).toBe('3');
      const stored = await db().ctx.store.db.selectFrom('cohorts').select(['id', 'size']).orderBy('id').execute();
      expect(stored.map((c) => [c.id, Number(c.size)])).toEqual([
        ['ui_churn', 1],
        ['ui_power', 3],
      ]);
      await expectTablesFit(page);
      await shot(page, `source-${db().dialect}`);

      // What was copied is what Amplitude needs: its webhook with that header is accepted.
      const [name, value] = header.split(': ');
      const hook = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [name as string]: value as string },
        body: JSON.stringify({
          cohort_id: 'ui_power',
          in_cohort: true,
          computed_time: Math.floor(Date.now() / 1000),
          message_id: 'ui-msg-1',
          users: [{ user_id: 'p4' }],
        }),
      });
      expect(hook.status).toBe(200);

      // A later visit hides the secret until asked for.
      await page.reload();
      await page.getByRole('link', { name: 'Sources', exact: true }).click();
      await page.getByRole('link', { name: 'Main project' }).click();
      expect(await page.locator('#webhook-header').count()).toBe(0);
      await page.getByRole('button', { name: 'Reveal secret' }).click();
      await expect.poll(() => page.locator('#webhook-header').textContent()).toBe(header);

      // Edit: a bad budget is named by its field; a good one is saved and shown.
      await page.getByLabel('Cohort downloads allowed per month').fill('-3');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.locator('.field.invalid', { has: page.getByLabel('Cohort downloads allowed per month') }).waitFor();
      await page.getByLabel('Cohort downloads allowed per month').fill('120');
      await page.getByLabel('Name', { exact: true }).fill('Main (EU)');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByRole('heading', { name: 'Source: Main (EU)' }).waitFor();
      await page.getByText('0 planned a month of 120', { exact: false }).waitFor();

      // Test connection, a rotated secret that Amplitude refuses, then the right one again.
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection OK: Amplitude accepted the keys').waitFor();
      await page.getByLabel('New project secret key').fill('rotated-wrong-secret');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page
        .locator('#test-result')
        .getByText(/Connection failed: Amplitude refused/)
        .waitFor();
      await page.getByLabel('New project secret key').fill(AMP.secretKey);
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection OK').waitFor();

      // Delete asks first; then the source and its cohorts are gone.
      await page.getByRole('link', { name: 'Delete source…' }).click();
      await page.getByRole('heading', { name: 'Delete source Main (EU)?' }).waitFor();
      await page.getByText('Its 2 cohort(s), their members and its webhook are forgotten').waitFor();
      await page.getByRole('button', { name: 'Delete source' }).click();
      await page.getByText('Source "Main (EU)" deleted with its cohorts.').waitFor();
      expect(await db().ctx.store.db.selectFrom('sources').select('id').execute()).toEqual([]);
      expect(await db().ctx.store.db.selectFrom('cohorts').select('id').execute()).toEqual([]);
      expect(ui.scriptErrors).toEqual([]);
    },
  );
});
