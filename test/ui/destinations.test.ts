import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { expectTablesFit, openUi, runBrowser, shot, type UiSession } from './harness';

const OS_KEY = 'ui-dest-os-key';

describeEachDialect('web UI: OneSignal destinations', (db) => {
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const appId = crypto.randomUUID();

  beforeAll(async () => {
    if (!runBrowser) return;
    emu = await startOneSignalEmulator({ apps: [{ appId, apiKey: OS_KEY }], users: { mode: 'seeded', ids: ['u1'] } });
    ui = await openUi(db().ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)('adds a destination, lists it, tests it, pauses and resumes delivery', async () => {
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
    expect(ui.scriptErrors).toEqual([]);
  });
});
