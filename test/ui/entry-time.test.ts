import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination } from '../helpers/seed';
import { openUi, runBrowser, type UiSession } from './harness';

const OS_KEY = 'ui-entry-time-os-key';

describeEachDialect('web UI: a sync whose tags hold the entry time', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const appId = crypto.randomUUID();

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    emu = await startOneSignalEmulator({ apps: [{ appId, apiKey: OS_KEY }], users: { mode: 'seeded', ids: ['e1'] } });
    await seedDestination(ctx, {
      id: 'dst_entry',
      name: 'Entry app',
      app_id: appId,
      api_url: emu.url,
      api_key: OS_KEY,
    });
    await seedCohort(ctx, { id: 'coh_entry', name: 'Trialists', size: 1, last_computed: Date.now() });
    await ctx.store.db.insertInto('cohort_members').values({ cohort_id: 'coh_entry', external_id: 'e1' }).execute();
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)(
    'choosing "entry time" on the new sync form makes the tag hold the Unix time the user entered',
    async () => {
      const { page } = ui;
      await page.getByRole('link', { name: 'Cohorts', exact: true }).click();
      await page.getByRole('link', { name: 'Sync cohort Trialists' }).click();
      const form = page.getByRole('form', { name: 'New sync' });
      await form.getByLabel('Tag value').selectOption('entered_at');
      const before = Math.floor(Date.now() / 1000) - 1;
      await form.getByRole('button', { name: 'Create sync' }).click();
      await page.getByText('the Unix time the user entered the cohort').waitFor();
      await page.getByRole('button', { name: 'Run now' }).click();
      await page.locator('#run-live h1 .badge').filter({ hasText: 'completed' }).waitFor({ timeout: 30_000 });
      const value = Number(emu.state.getUser('e1', appId)?.amp_cohort_coh_entry);
      expect(value).toBeGreaterThanOrEqual(before);
      expect(value).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
      expect(emu.state.segments(appId)[0]!.filters).toEqual([
        { field: 'tag', key: 'amp_cohort_coh_entry', relation: 'exists' },
      ]);
    },
  );
});
