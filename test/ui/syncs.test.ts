import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination } from '../helpers/seed';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const OS_KEY = 'ui-syncs-os-key';
const USERS = ['s1', 's2', 's3', 's4', 's5', 's6'];

describeEachDialect('web UI: a sync page', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const appId = crypto.randomUUID();

  const setMembers = async (ids: string[]) => {
    const d = db().ctx.store.db;
    await d.deleteFrom('cohort_members').where('cohort_id', '=', 'coh_sync').execute();
    await d
      .insertInto('cohort_members')
      .values(ids.map((external_id) => ({ cohort_id: 'coh_sync', external_id })))
      .execute();
    // As `cohort import` does: the size is part of the cohort's snapshot.
    await d.updateTable('cohorts').set({ size: ids.length }).where('id', '=', 'coh_sync').execute();
  };

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    emu = await startOneSignalEmulator({ apps: [{ appId, apiKey: OS_KEY }], users: { mode: 'seeded', ids: USERS } });
    await seedDestination(ctx, { id: 'dst_sync', name: 'Sync app', app_id: appId, api_url: emu.url, api_key: OS_KEY });
    await seedCohort(ctx, { id: 'coh_sync', name: 'Readers', size: 3, last_computed: Date.now() });
    await setMembers(['s1', 's2', 's3']);
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  const runNow = async () => {
    const { page } = ui;
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.locator('#run-live h1 .badge').filter({ hasText: 'completed' }).waitFor({ timeout: 30_000 });
    await page.getByRole('link', { name: /Readers → Sync app/ }).click();
  };

  it.skipIf(!runBrowser)(
    'creates a sync with its settings (errors by field), edits, pauses and resumes it, plots its runs, deletes it after asking, then its cohort',
    async () => {
      const { page } = ui;
      await page.getByRole('link', { name: 'Cohorts', exact: true }).click();
      await page.getByRole('link', { name: 'Sync cohort Readers' }).click();
      const form = page.getByRole('form', { name: 'New sync' });
      expect(await form.getByLabel('Cohort').inputValue()).toBe('coh_sync');
      // The app's schema answers, next to the field it names; what was chosen stays chosen.
      await form.getByLabel('Cadence').selectOption('daily');
      await form.getByLabel(/Removal guard/).fill('1.5');
      await form.getByRole('button', { name: 'Create sync' }).click();
      const guard = page.locator('.field.invalid', { has: page.getByLabel(/Removal guard/) });
      await guard.getByText('must be a share of at most 1').waitFor();
      expect(await form.getByLabel('Cadence').inputValue()).toBe('daily');
      await shot(page, `sync-new-error-${db().dialect}`);
      await form.getByLabel('Cadence').selectOption('manual');
      await form.getByLabel(/Removal guard/).fill('0.4');
      await form.getByRole('button', { name: 'Create sync' }).click();
      await page.getByText('Sync created.').waitFor();
      expect(
        await page
          .getByRole('row', { name: /^Destination/ })
          .getByRole('link')
          .getAttribute('href'),
      ).toBe('/destinations/dst_sync');
      await page.getByText('No finished run yet').waitFor();
      await page.getByText('more than 40% of the confirmed members waits for approval').waitFor();

      // Edit: a bad share is refused by the field, a good one saved.
      const settings = page.getByRole('region', { name: 'Settings' });
      await settings.getByLabel(/Removal guard/).fill('0');
      await settings.getByRole('button', { name: 'Save changes' }).click();
      await page
        .locator('.field.invalid', { has: page.getByLabel(/Removal guard/) })
        .getByText('must be a share above 0')
        .waitFor();
      await settings.getByLabel(/Removal guard/).fill('0.5');
      await settings.getByLabel('Cadence').selectOption('hourly');
      await settings.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Changes saved.').waitFor();
      await page.getByText('more than 50% of the confirmed members waits for approval').waitFor();
      const [saved] = await db().ctx.store.db.selectFrom('syncs').select(['cadence', 'guard_threshold']).execute();
      expect({ ...saved, guard_threshold: Number(saved?.guard_threshold) }).toEqual({
        cadence: 'hourly',
        guard_threshold: 0.5,
      });

      // Pause: no run can start (the button is gone) until resumed.
      await page.getByRole('button', { name: 'Pause sync' }).click();
      await page.getByText('Sync paused').waitFor();
      expect(await page.getByRole('button', { name: 'Run now' }).count()).toBe(0);
      await shot(page, `sync-paused-${db().dialect}`);
      await page.getByRole('button', { name: 'Resume sync' }).click();
      await page.getByText('Sync resumed').waitFor();

      // A delete left half done (removals OneSignal has not taken yet) offers only to finish it.
      const d = db().ctx.store.db;
      await d.updateTable('syncs').set({ status: 'deleting' }).execute();
      await page.reload();
      await page.getByText('delete it again to finish').waitFor();
      expect(await page.getByRole('button', { name: 'Run now' }).count()).toBe(0);
      expect(await page.getByRole('link', { name: 'Finish deleting…' }).getAttribute('href')).toMatch(/\/delete$/);
      await d.updateTable('syncs').set({ status: 'active' }).execute();
      await page.reload();
      await runNow(); // +3 → 3 members
      await setMembers(['s1', 's2', 's3', 's4', 's5']);
      await runNow(); // +2 → 5
      await setMembers(['s2', 's3', 's4', 's5', 's6']);
      await runNow(); // +1 −1 → 5

      const chart = page.getByRole('img', { name: /^Members, additions and removals per run/ });
      const summary = (await chart.getAttribute('aria-label')) ?? '';
      expect(summary).toContain('Added: 6 in all, last 1');
      expect(summary).toContain('Removed: 1 in all, last 1');
      expect(summary).toContain('Members: last 5, at most 5');
      expect(await chart.locator('rect.s-added').count()).toBe(3);
      expect(await chart.locator('polyline.s-members').getAttribute('points')).toMatch(/^(\S+ ){2}\S+$/);
      await expectTablesFit(page);
      await shot(page, `sync-${db().dialect}`);
      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      await page.getByRole('cell', { name: 'Readers' }).waitFor();
      await expectTablesFit(page);
      await shot(page, `overview-${db().dialect}`);
      await page.getByRole('link', { name: 'Destinations', exact: true }).click();
      await expectTablesFit(page);
      await page.getByRole('link', { name: 'Overview', exact: true }).click();
      await page.getByRole('link', { name: 'Run history' }).click();

      // The cohort cannot go while its sync does: the page says so and offers no button.
      await page.goto(`${ui.base}/cohorts`);
      await page.getByRole('link', { name: 'Delete cohort Readers' }).click();
      await page.getByText('The cohort is synced: delete its sync(s) first').waitFor();
      expect(await page.getByRole('button', { name: 'Delete cohort' }).count()).toBe(0);
      await page.getByRole('link', { name: 'Sync to Sync app' }).click();

      await page.getByRole('link', { name: 'Delete sync…' }).click();
      await page.getByRole('heading', { name: 'Delete the sync of Readers?' }).waitFor();
      expect(emu.state.getUser('s2', appId)).toMatchObject({ amp_cohort_coh_sync: '1' });
      await page.getByRole('button', { name: 'Delete sync' }).click();
      await page.getByText('Sync of "Readers" deleted; its tag was removed from 5 user(s).').waitFor();
      await page.getByText(/Its OneSignal segment \S+ was deleted\./).waitFor();
      expect(emu.state.segments(appId)).toEqual([]);
      for (const id of USERS) expect(emu.state.getUser(id, appId)?.amp_cohort_coh_sync).toBeUndefined();
      expect(await db().ctx.store.db.selectFrom('syncs').select('id').execute()).toEqual([]);

      // Now the cohort can go, after its own confirmation.
      await page.getByRole('link', { name: 'Delete cohort Readers' }).click();
      await page.getByText('Its 5 stored member(s) are forgotten.').waitFor();
      await page.getByRole('button', { name: 'Delete cohort' }).click();
      await page.getByText('Cohort "Readers" deleted with its 5 member(s).').waitFor();
      expect(await db().ctx.store.db.selectFrom('cohorts').select('id').execute()).toEqual([]);
      expect(ui.scriptErrors).toEqual([]);
    },
    120_000,
  );
});
