import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedDestination } from '../helpers/seed';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const OS_KEY = 'ui-runs-os-key';
const SLOW = Array.from({ length: 30 }, (_, i) => `slow-${i}`);
const GUARDED = ['g1', 'g2', 'g3', 'g4'];

describeEachDialect('web UI: runs', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const slowApp = crypto.randomUUID();
  const guardApp = crypto.randomUUID();

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    emu = await startOneSignalEmulator({
      apps: [
        { appId: slowApp, apiKey: OS_KEY },
        { appId: guardApp, apiKey: OS_KEY },
      ],
      // Three of the slow cohort's users are unknown to OneSignal.
      users: { mode: 'seeded', ids: [...SLOW.slice(3), ...GUARDED] },
    });
    // 3 requests a second for 30 users: the run takes about 10 s, longer than the Run now answer waits.
    await seedDestination(ctx, {
      id: 'dst_slow',
      name: 'Slow app',
      app_id: slowApp,
      api_url: emu.url,
      api_key: OS_KEY,
      rate_limit_per_second: 3,
    });
    await seedDestination(ctx, {
      id: 'dst_guard',
      name: 'Guarded app',
      app_id: guardApp,
      api_url: emu.url,
      api_key: OS_KEY,
    });
    for (const [id, name, members] of [
      ['coh_slow', 'Slow cohort', SLOW],
      ['coh_guard', 'Guarded cohort', GUARDED],
    ] as const) {
      await seedCohort(ctx, { id, name, size: members.length, last_computed: Date.now() });
      await ctx.store.db
        .insertInto('cohort_members')
        .values(members.map((external_id) => ({ cohort_id: id, external_id })))
        .execute();
    }
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  const syncAndRun = async (cohort: string, destination: string) => {
    const { page } = ui;
    await page.getByRole('link', { name: 'Cohorts', exact: true }).click();
    await page.getByRole('link', { name: `Sync cohort ${cohort}` }).click();
    const form = page.getByRole('form', { name: 'New sync' });
    await form.getByLabel('OneSignal destination').selectOption({ label: destination });
    await form.getByRole('button', { name: 'Create sync' }).click();
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByRole('heading', { name: /^Run run_/ }).waitFor();
  };

  it.skipIf(!runBrowser)(
    'a running run updates itself until it ends, then shows its outcome bar',
    async () => {
      const { page } = ui;
      await syncAndRun('Slow cohort', 'Slow app');
      const badge = page.locator('#run-live h1 .badge');
      expect(await badge.textContent()).toBe('running');
      await page.getByText('still working (this page updates by itself)').waitFor();
      await shot(page, `run-running-${db().dialect}`);
      // The sync page, open beside it, follows the run in its history too.
      const syncTab = await ui.context.newPage();
      await syncTab.goto(page.url());
      await syncTab.getByRole('link', { name: /Slow cohort → Slow app/ }).click();
      await syncTab.getByText('A run is queued or running: this list updates by itself.').waitFor();
      // No reload from here on: the page polls and turns itself into the ended run.
      await badge.filter({ hasText: 'completed' }).waitFor({ timeout: 60_000 });
      await page.getByText('Delivered: 27 (90.0%)').waitFor();
      await page.getByText('Not in OneSignal: 3 (10.0%)').waitFor();
      const bar = page.getByRole('img', {
        name: /Delivered 27, Not in OneSignal 3, Failed 0, Pending 0 of 30 changes/,
      });
      await bar.waitFor();
      await expectTablesFit(page);
      await shot(page, `run-completed-${db().dialect}`);
      await syncTab.locator('#run-history tbody tr').first().locator('.badge', { hasText: 'completed' }).waitFor();
      await syncTab.getByRole('img', { name: /Added: 30 in all/ }).waitFor();
      await syncTab.close();
      expect(emu.state.getUser('slow-29', slowApp)).toMatchObject({ amp_cohort_coh_slow: '1' });
    },
    120_000,
  );

  it.skipIf(!runBrowser)(
    'a held run is approved only from its confirmation page',
    async () => {
      const { page } = ui;
      await syncAndRun('Guarded cohort', 'Guarded app');
      await page.locator('#run-live h1 .badge').filter({ hasText: 'completed' }).waitFor({ timeout: 30_000 });
      expect(emu.state.getUser('g1', guardApp)).toMatchObject({ amp_cohort_coh_guard: '1' });

      // Three of four members leave: more than half, so the next run is held.
      await db()
        .ctx.store.db.deleteFrom('cohort_members')
        .where('cohort_id', '=', 'coh_guard')
        .where('external_id', '<>', 'g4')
        .execute();
      await page.getByRole('link', { name: /Guarded cohort → Guarded app/ }).click();
      await page.getByRole('button', { name: 'Run now' }).click();
      await page.locator('#run-live h1 .badge').filter({ hasText: 'held' }).waitFor({ timeout: 30_000 });
      await page.getByRole('heading', { name: 'Held for approval' }).waitFor();

      await page.getByRole('link', { name: 'Approve and deliver…' }).click();
      await page.getByRole('heading', { name: 'Approve and deliver this run?' }).waitFor();
      await page.getByText('0 user(s) get the cohort tag and 3 lose it').waitFor();
      await shot(page, `run-approve-${db().dialect}`);
      await page.getByRole('link', { name: 'Cancel' }).click();
      await page.getByRole('heading', { name: 'Held for approval' }).waitFor();
      // Still held, nothing removed: the first click only asked.
      expect(emu.state.getUser('g1', guardApp)).toMatchObject({ amp_cohort_coh_guard: '1' });

      await page.getByRole('link', { name: 'Approve and deliver…' }).click();
      await page.getByRole('button', { name: 'Approve and deliver' }).click();
      await page.getByText('Run approved.').waitFor();
      await page.locator('#run-live h1 .badge').filter({ hasText: 'completed' }).waitFor({ timeout: 30_000 });
      expect(emu.state.getUser('g1', guardApp)?.amp_cohort_coh_guard).toBeUndefined();
      expect(emu.state.getUser('g4', guardApp)).toMatchObject({ amp_cohort_coh_guard: '1' });
      expect(ui.scriptErrors).toEqual([]);
    },
    120_000,
  );
});
