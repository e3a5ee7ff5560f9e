import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { buildServer } from '../../src/server/app';
import type { Context } from '../../src/store';
import { describeEachDialect } from '../helpers/db';
import { seedCohort, seedStream, seedStreamEvents } from '../helpers/seed';

const CHROMIUM = '/usr/bin/chromium';
// Locally a machine without Chromium skips; under CI=true the launch runs and fails loudly.
const runBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';

const TOKEN = 'ui-test-admin-token-abcdef';
const OS_KEY = 'ui-os-key-PLAINTEXT';

async function seed(ctx: Context) {
  const db = ctx.store.db;
  const now = Date.now();
  await seedCohort(ctx, { id: 'coh_ui', name: 'Trial users', size: 4, last_computed: now, created_at: now });
  await db
    .insertInto('cohort_members')
    .values(['u1', 'u2', 'u3', 'u4'].map((external_id) => ({ cohort_id: 'coh_ui', external_id })))
    .execute();
  await seedStream(ctx, {
    id: 'str_ui',
    name: 'Push events',
    amplitude_api_key: 'amp-key',
    webhook_secret: 'hook-secret',
    duplicates: 1,
    created_at: now,
  });
  await seedStreamEvents(
    ctx,
    'str_ui',
    [
      { event_id: 'ev-1', status: 'forwarded', attempts: 1 },
      { event_id: 'ev-2', status: 'forwarded', attempts: 1 },
      { event_id: 'ev-3', status: 'dead', attempts: 1, reason: 'user_id is too short (Amplitude 400)' },
    ],
    now,
  );
}

describeEachDialect('web UI in headless Chromium', (db) => {
  let app: FastifyInstance;
  let base: string;
  let emu: OneSignalEmulator;
  let browser: Browser | undefined;
  let page: Page;
  const appId = crypto.randomUUID();

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    emu = await startOneSignalEmulator({
      apps: [{ appId, apiKey: OS_KEY }],
      users: { mode: 'seeded', ids: ['u1', 'u2', 'u3'] },
    });
    await seed(ctx);
    app = await buildServer({ ctx, adminToken: TOKEN });
    await app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(15_000);
  });
  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await emu?.close();
  });

  it.skipIf(!runBrowser)(
    'signs in, adds a destination, tests it, syncs a cohort and reads the run and streams',
    async () => {
      const scriptErrors: string[] = [];
      page.on('pageerror', (e) => scriptErrors.push(e.message));

      // Unauthenticated: sent to the login form, which brings us back after sign-in.
      await page.goto(`${base}/catalog`);
      await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
      await page.getByLabel('Admin token').fill('wrong');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('That token is not the admin token.').waitFor();
      await page.getByLabel('Admin token').fill(TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Catalog' }).waitFor();

      // Catalog → new destination form; a bad App ID re-renders with the message by the field.
      await page.getByRole('link', { name: 'Add OneSignal destination' }).click();
      await page.getByRole('heading', { name: 'Add a OneSignal destination' }).waitFor();
      await page.getByLabel('Name', { exact: true }).fill('UI app');
      await page.getByLabel('OneSignal App ID').fill('not-an-app-id');
      await page.getByLabel('App API key').fill(OS_KEY);
      await page.getByLabel('API base URL').fill(emu.url);
      await page.getByRole('button', { name: 'Save destination' }).click();
      await page.locator('#f-app_id-error').getByText('must be a OneSignal App ID').waitFor();
      expect(await page.getByLabel('Name', { exact: true }).inputValue()).toBe('UI app');

      // Test connection (htmx, inline result), first with a wrong key, then the right one.
      await page.getByLabel('OneSignal App ID').fill(appId);
      await page.getByLabel('App API key').fill('wrong-key');
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection failed').waitFor();
      await page.getByLabel('App API key').fill(OS_KEY);
      await page.getByRole('button', { name: 'Test connection' }).click();
      await page.locator('#test-result').getByText('Connection OK').waitFor();

      await page.getByRole('button', { name: 'Save destination' }).click();
      await page.getByText('Destination "UI app" saved.').waitFor();

      // Cohorts page: sync the cohort to the new destination.
      await page.getByRole('link', { name: 'Sync cohort Trial users' }).click();
      const form = page.getByRole('form', { name: 'New sync' });
      await expect.poll(() => form.getByLabel('OneSignal destination').inputValue()).toMatch(/^dst_/);
      await form.getByLabel('Cadence').selectOption('manual');
      await form.getByRole('button', { name: 'Create sync' }).click();
      await page.getByRole('heading', { name: 'Sync: Trial users → UI app' }).waitFor();
      await page.getByText('Sync created.').waitFor();

      // Run it: the run page shows counters that add up and the record OneSignal did not know.
      await page.getByRole('button', { name: 'Run now' }).click();
      await page.getByRole('heading', { name: /^Run run_/ }).waitFor();
      await expect
        .poll(async () => {
          await page.reload();
          return page.locator('h1 .badge').textContent();
        })
        .toBe('completed');
      const counter = (label: string) =>
        page
          .locator('dl.counters div', { has: page.getByText(label, { exact: true }) })
          .locator('dd')
          .textContent();
      expect(await counter('Added')).toBe('4');
      expect(await counter('Delivered')).toBe('3');
      expect(await counter('Not found')).toBe('1');
      expect(await counter('Failed')).toBe('0');
      const row = page.getByRole('row', { name: /u4/ });
      await expect.poll(() => row.textContent()).toMatch(/not_found.*not found in OneSignal/);
      expect(emu.state.getUser('u1', appId)).toMatchObject({ amp_cohort_coh_ui: '1' });
      await page.screenshot({ path: '/tmp/ampsignal-ui.png', fullPage: true });

      // Run history on the sync page.
      await page.getByRole('link', { name: /Trial users → UI app/ }).click();
      await page.getByRole('heading', { name: 'Run history' }).waitFor();
      expect(await page.locator('table').last().locator('tbody tr').count()).toBe(1);

      // Overview lists the sync with its last run; streams page shows counters and dead letters.
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.getByRole('cell', { name: 'Trial users' }).waitFor();
      await page.getByRole('link', { name: 'Streams' }).click();
      await page.getByRole('heading', { name: /Event streams/ }).waitFor();
      const streamRow = page.getByRole('row', { name: /Push events/ });
      const cells = await streamRow.locator('td.num').allTextContents();
      // received, duplicates, forwarded, forwarded/min, dead letters, pending
      expect(cells).toEqual(['3', '1', '2', '2', '1', '0']);
      await streamRow.getByRole('link', { name: '1' }).click();
      await page.getByText('user_id is too short (Amplitude 400)').waitFor();
      if (db().dialect === 'sqlite') await page.screenshot({ path: '/tmp/ampsignal-ui-streams.png', fullPage: true });

      // Sign out: the UI is closed again.
      await page.getByRole('button', { name: 'Sign out' }).click();
      await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
      await page.goto(`${base}/`);
      await expect.poll(() => new URL(page.url()).pathname).toBe('/login');
      expect(scriptErrors).toEqual([]);
    },
  );
});
