import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addSource } from '../../src/app/sources';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { describeEachDialect } from '../helpers/db';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const AMP = { apiKey: 'ui-cohorts-amp-key', secretKey: 'ui-cohorts-amp-secret' };

describeEachDialect('web UI: cohorts', (db) => {
  let amp: AmplitudeEmulator;
  let ui: UiSession;
  const dir = mkdtempSync(join(tmpdir(), 'ui-cohorts-'));
  const csv = join(dir, 'vip.csv');
  writeFileSync(csv, 'user_id,plan\nvip-1,pro\nvip-2,pro\n,free\nvip-1,pro\n vip-3 ,pro\n');

  beforeAll(async () => {
    if (!runBrowser) return;
    amp = await startAmplitudeEmulator({
      projects: [AMP],
      cohorts: [{ id: 'amp_trial', name: 'Trialists', members: [{ user_id: 't1' }] }],
    });
    await addSource(db().ctx, {
      name: 'Growth project',
      api_key: AMP.apiKey,
      secret_key: AMP.secretKey,
      api_url: amp.url,
    });
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await amp?.close();
  });

  it.skipIf(!runBrowser)('imports a cohort file and refreshes a source’s cohorts from the cohorts page', async () => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Cohorts', exact: true }).click();
    await page.getByText('No cohorts yet.').waitFor();

    // A bad id is named by its field; no members (neither pasted nor a file) is refused too.
    await page.getByLabel('Cohort name').fill('VIP');
    await page.getByLabel('Cohort id (optional)').fill('vip list');
    await page.getByRole('button', { name: 'Import' }).click();
    await page
      .locator('.field.invalid', { has: page.getByLabel('Cohort id (optional)') })
      .getByText(/may contain only/)
      .waitFor();
    await page
      .locator('.field.invalid', { has: page.getByLabel('Member ids (one per line)') })
      .getByText('paste the member ids, or choose a file')
      .waitFor();

    await page.getByLabel('Cohort id (optional)').fill('vip');
    await page.getByLabel('File', { exact: true }).setInputFiles(csv);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText('Cohort "VIP" imported: 3 member(s) (1 blank and 1 duplicate row(s) skipped).').waitFor();
    const row = page.getByRole('row', { name: /VIP/ });
    expect(await row.locator('td.num').textContent()).toBe('3');
    const members = await db()
      .ctx.store.db.selectFrom('cohort_members')
      .select('external_id')
      .where('cohort_id', '=', 'vip')
      .orderBy('external_id')
      .execute();
    expect(members.map((m) => m.external_id)).toEqual(['vip-1', 'vip-2', 'vip-3']);

    // Pasted ids, as `cohort import` reads a file of one id per line.
    await page.getByLabel('Cohort name').fill('Pasted');
    await page.getByLabel('Member ids (one per line)').fill('p-1\np-2\n\np-1\n');
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText('Cohort "Pasted" imported: 2 member(s) (1 blank and 1 duplicate row(s) skipped).').waitFor();
    expect(
      await page
        .getByRole('row', { name: /Pasted/ })
        .locator('td.num')
        .textContent(),
    ).toBe('2');

    await page.getByRole('button', { name: 'Refresh cohorts of Growth project' }).click();
    await page.getByText('1 cohort(s) of Growth project listed from Amplitude.').waitFor();
    await page.getByRole('row', { name: /Trialists/ }).waitFor();
    await expectTablesFit(page);
    await shot(page, `cohorts-${db().dialect}`);
    expect(ui.scriptErrors).toEqual([]);
  });
});
