import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OneSignalEmulator } from '../../src/emulators/onesignal';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { cohortSync, range, setupApp } from '../sync/setup';
import { expectFitsCards, openUi, runBrowser, shot, type UiSession } from './harness';

describeEachDialect('web UI: retry failed users of a run', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  let runId: string;
  let tagKey: string;

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    // OneSignal refuses two users for good: its tag limit, reached by tags set behind the sync's back.
    const users = range('ui-r', 0, 6);
    const app = await setupApp(ctx, { users, emulator: { maxTagsPerUser: 1 } });
    emu = app.emu;
    for (const u of ['ui-r2', 'ui-r5']) emu.state.setTags(u, { other_tool: 'x' });
    const { sync } = await cohortSync(ctx, app.dest.id, users, 'Retry cohort');
    tagKey = sync.tag_key;
    const run = await runSync(ctx, sync.id);
    expect(run).toMatchObject({ status: 'completed', failed: 2, delivered: 4 });
    runId = run.id;
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)('offers a retry only while users failed, asks first, then delivers them', async () => {
    const { page, base } = ui;
    await page.goto(`${base}/runs/${runId}`);
    await page
      .getByText('2 user(s) of this run could not be delivered to OneSignal for good.', { exact: false })
      .waitFor();
    emu.setLimits({ maxTagsPerUser: 100 });

    await page.getByRole('link', { name: 'Retry failed users…' }).click();
    await page.getByRole('heading', { name: 'Retry the failed users of this run?' }).waitFor();
    await page.getByText('2 user(s) whose delivery to').waitFor();
    await shot(page, `run-retry-confirm-${db().dialect}`);
    await page.getByRole('button', { name: 'Retry failed users' }).click();

    await page.getByText('2 failed user(s) re-queued for delivery.').waitFor();
    expect(await page.locator('#run-live h1 .badge').textContent()).toBe('completed');
    expect(await page.getByRole('link', { name: 'Retry failed users…' }).count()).toBe(0);
    expect(emu.state.getUser('ui-r5')).toMatchObject({ [tagKey]: '1' });
    await expectFitsCards(page);
    await shot(page, `run-retried-${db().dialect}`);

    // Nothing left to retry: the confirmation's own button is refused with the reason.
    await page.goto(`${base}/runs/${runId}/retry`);
    await page.getByRole('button', { name: 'Retry failed users' }).click();
    await page.getByText(`run ${runId} has no failed users to retry`).waitFor();
    expect(ui.scriptErrors).toEqual([]);
  });
});
