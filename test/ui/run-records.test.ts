import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Context } from '../../src/store';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { cohortSync, range, setupApp } from '../sync/setup';
import { openUi, runBrowser, shot, type UiSession } from './harness';

describeEachDialect('web UI: a run’s records and the user search', (db) => {
  let ui: UiSession;
  let ctx: Context;
  const emulators: Array<{ close(): Promise<void> }> = [];
  let runId = '';

  beforeAll(async () => {
    if (!runBrowser) return;
    ctx = db().ctx;
    // 110 members, 10 of them unknown to OneSignal: three pages of 50, and a not_found filter.
    const known = range('web', 100, 200);
    const { emu, dest } = await setupApp(ctx, { users: known });
    emulators.push(emu);
    const { sync } = await cohortSync(ctx, dest.id, [...known, ...range('ghost', 10, 20)], 'Web cohort');
    runId = (await runSync(ctx, sync.id)).id;
    ui = await openUi(ctx);
  });
  afterAll(async () => {
    await ui?.close();
    await Promise.all(emulators.map((e) => e.close()));
  });

  it.skipIf(!runBrowser)('pages 50 records at a time, filters by outcome, links the download', async () => {
    const { page, base } = ui;
    await page.goto(`${base}/runs/${runId}`);
    const rows = page.locator('#records tbody tr');
    await expect.poll(() => rows.count()).toBe(50);
    expect(await rows.first().locator('code').textContent()).toBe('ghost10');
    await page.getByRole('link', { name: 'Next 50' }).click();
    await expect.poll(() => rows.count()).toBe(50);
    await page.getByRole('link', { name: 'Next 50' }).click();
    await expect.poll(() => rows.count()).toBe(10);
    expect(await page.getByRole('link', { name: 'Next 50' }).count()).toBe(0);
    await page.getByRole('link', { name: 'Not found', exact: true }).click();
    await expect.poll(() => rows.count()).toBe(10);
    expect(await rows.first().textContent()).toMatch(/ghost10.*not_found.*404/);
    const href = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href');
    expect(href).toBe(`/runs/${runId}/records/export?format=csv&outcome=not_found`);
    const csv = await page.request.get(`${base}${href}`);
    expect(csv.status()).toBe(200);
    expect((await csv.text()).trim().split('\n')).toHaveLength(11);
    await shot(page, `run-records-${ctx.store.engine.name}`);
  });

  it.skipIf(!runBrowser)('the user search says whether the tag is wanted and carried, and why not', async () => {
    const { page, base } = ui;
    await page.goto(`${base}/users`);
    await page.getByLabel('External id').fill('ghost12');
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.getByRole('heading', { name: /Web cohort/ }).waitFor();
    expect(await page.locator('main, body').first().textContent()).toMatch(
      /wanted yes, carried by OneSignal no — not_found/,
    );
    expect(await page.locator('table tbody tr').first().textContent()).toMatch(/not_found/);
    await shot(page, `user-search-${ctx.store.engine.name}`);
  });
});
