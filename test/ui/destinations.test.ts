import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { seedCohort } from '../helpers/seed';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const OS_KEY = 'ui-dest-os-key';

describeEachDialect('web UI: OneSignal destinations', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const appId = crypto.randomUUID();

  beforeAll(async () => {
    if (!runBrowser) return;
    emu = await startOneSignalEmulator({ apps: [{ appId, apiKey: OS_KEY }], users: { mode: 'seeded', ids: ['u1'] } });
    const { ctx } = db();
    await seedCohort(ctx, { id: 'coh_dest', name: 'Buyers', size: 2, last_computed: Date.now() });
    await ctx.store.db
      .insertInto('cohort_members')
      .values(['u1', 'u2'].map((external_id) => ({ cohort_id: 'coh_dest', external_id })))
      .execute();
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)(
    'adds, lists, tests, pauses, resumes, edits (a rotated key), refuses a template change once synced, deletes with its tags',
    async () => {
      const { page } = ui;
      await page.getByRole('link', { name: 'Destinations', exact: true }).click();
      await page.getByText('No destination yet').waitFor();
      await page.getByRole('link', { name: 'Add OneSignal destination' }).click();
      await page.getByLabel('Name', { exact: true }).fill('Prod app');
      await page.getByLabel('OneSignal App ID').fill(appId);
      await page.getByLabel('App API key').fill(OS_KEY);
      await page.getByLabel('Requests per second for this app').fill('250');
      await page.getByLabel('API base URL').fill(emu.url);
      await page.getByRole('button', { name: 'Save destination' }).click();
      await page.getByText('Destination "Prod app" saved.').waitFor();

      await page.getByRole('link', { name: 'Destinations', exact: true }).click();
      const row = page.getByRole('row', { name: /Prod app/ });
      expect(await row.textContent()).toContain(appId);
      await expectTablesFit(page);
      await row.getByRole('link', { name: 'Prod app' }).click();
      await page.getByRole('heading', { name: 'Destination: Prod app' }).waitFor();
      await page
        .getByRole('row', { name: /Rate limit/ })
        .getByText('250 requests/s')
        .waitFor();

      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText(`Connection OK: connected to OneSignal app ${appId}`).waitFor();

      await page.getByRole('button', { name: 'Pause delivery' }).click();
      await page.getByText('Delivery paused').waitFor();
      await page
        .getByRole('row', { name: /Status/ })
        .getByText('paused', { exact: true })
        .waitFor();
      const stored = await db()
        .ctx.store.db.selectFrom('destinations')
        .select(['status', 'rate_limit_per_second'])
        .executeTakeFirstOrThrow();
      expect(stored.status).toBe('paused');
      expect(Number(stored.rate_limit_per_second)).toBe(250);
      await shot(page, `destination-${db().dialect}`);
      await page.getByRole('button', { name: 'Resume delivery' }).click();
      await page.getByText('Delivery resumed.').waitFor();
      await page
        .getByRole('row', { name: /Status/ })
        .getByText('active', { exact: true })
        .waitFor();

      // Rotating the key: a wrong new key is saved, the test says so, the right one passes.
      await page.getByLabel('Requests per second for this app').fill('0');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page
        .locator('.field.invalid', { has: page.getByLabel('Requests per second for this app') })
        .getByText('must be at least 1')
        .waitFor();
      await page.getByLabel('Requests per second for this app').fill('300');
      await page.getByLabel('New App API key').fill('rotated-but-wrong');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection failed: OneSignal refused').waitFor();
      await page.getByLabel('New App API key').fill(OS_KEY);
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection OK').waitFor();
      await page
        .getByRole('row', { name: /Rate limit/ })
        .getByText('300 requests/s')
        .waitFor();

      // Sync a cohort to it and run: the tag is set at OneSignal.
      await page.getByRole('link', { name: 'Pick a cohort to sync here' }).click();
      const form = page.getByRole('form', { name: 'New sync' });
      await form.getByLabel('Cohort').selectOption('coh_dest');
      await form.getByRole('button', { name: 'Create sync' }).click();
      await page.getByRole('button', { name: 'Run now' }).click();
      await expect
        .poll(async () => {
          await page.reload();
          return page.locator('h1 .badge').textContent();
        })
        .toBe('completed');
      expect(emu.state.getUser('u1', appId)).toMatchObject({ amp_cohort_coh_dest: '1' });

      // Now the tag key template is fixed: the refusal says why.
      await page.getByRole('link', { name: 'Destinations', exact: true }).click();
      await page.getByRole('link', { name: 'Prod app' }).click();
      await page.getByLabel('Tag key template').fill('seg_{cohort_id}');
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page
        .getByRole('alert')
        .getByText(/cannot change the tag key template/)
        .waitFor();

      // Delete asks first, names the sync it takes along, and removes the tags when told to.
      await page.getByRole('link', { name: 'Delete destination…' }).click();
      await page.getByRole('heading', { name: 'Delete destination Prod app?' }).waitFor();
      await page.getByText('amp_cohort_coh_dest').waitFor();
      expect(await page.getByLabel(/Remove their tags/).isChecked()).toBe(true);
      await shot(page, `destination-delete-${db().dialect}`);
      await page.getByRole('link', { name: 'Cancel' }).click();
      await page.getByRole('heading', { name: 'Destination: Prod app' }).waitFor();
      await page.getByRole('link', { name: 'Delete destination…' }).click();
      await page.getByRole('button', { name: 'Delete destination' }).click();
      await page.getByText('Destination "Prod app" deleted.').waitFor();
      expect(emu.state.getUser('u1', appId)?.amp_cohort_coh_dest).toBeUndefined();
      expect(await db().ctx.store.db.selectFrom('destinations').select('id').execute()).toEqual([]);
      expect(await db().ctx.store.db.selectFrom('syncs').select('id').execute()).toEqual([]);
      expect(ui.scriptErrors).toEqual([]);
    },
  );
});
