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
    'plots members, additions and removals per run, and deletes the sync after asking',
    async () => {
      const { page } = ui;
      await page.getByRole('link', { name: 'Cohorts', exact: true }).click();
      await page.getByRole('form', { name: 'Sync cohort Readers' }).getByRole('button', { name: 'Sync' }).click();
      await page.getByText('No finished run yet').waitFor();
      await page.getByText('more than 50% of the confirmed members waits for approval').waitFor();
      await runNow(); // +3 → 3 members
      await setMembers(['s1', 's2', 's3', 's4', 's5']);
      await runNow(); // +2 → 5
      await setMembers(['s2', 's3', 's4', 's5', 's6']);
      await runNow(); // +1 −1 → 5

      const chart = page.getByRole('img', { name: /^Members, additions and removals per run/ });
      const summary = (await chart.getAttribute('aria-label')) ?? '';
      expect(summary).toContain('Added: 6 in all, last 1');
      expect(summary).toContain('Removed: 1 in all, last 1');
      expect(summary).toContain('Members: 13 in all, last 5');
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

      await page.getByRole('link', { name: 'Delete sync…' }).click();
      await page.getByRole('heading', { name: 'Delete the sync of Readers?' }).waitFor();
      expect(emu.state.getUser('s2', appId)).toMatchObject({ amp_cohort_coh_sync: '1' });
      await page.getByRole('button', { name: 'Delete sync' }).click();
      await page.getByText('Sync of "Readers" deleted; its tag was removed from 5 user(s).').waitFor();
      for (const id of USERS) expect(emu.state.getUser(id, appId)?.amp_cohort_coh_sync).toBeUndefined();
      expect(await db().ctx.store.db.selectFrom('syncs').select('id').execute()).toEqual([]);
      expect(ui.scriptErrors).toEqual([]);
    },
    120_000,
  );
});
