import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { catalog, getConnector } from '../../src/connectors/catalog';
import {
  clientForDestination,
  createDestination,
  destinationView,
  getDestination,
  listDestinations,
  pauseDestination,
  resumeDestination,
} from '../../src/connectors/onesignal/destinations';
import { renderTagKey } from '../../src/connectors/onesignal/tag-keys';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';

let emu: OneSignalEmulator;
const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
beforeAll(async () => {
  emu = await startOneSignalEmulator({ apps: [app], users: { mode: 'seeded', count: 10 } });
});
afterAll(async () => {
  await emu?.close();
});

describeEachDialect('OneSignal destinations', (db) => {
  it('creates with defaults, stores the key encrypted and never shows it', async () => {
    const { ctx } = db();
    const row = await createDestination(ctx, {
      name: 'Main app',
      app_id: app.appId.toUpperCase(),
      api_key: app.apiKey,
      api_url: `${emu.url}/`,
    });
    const v = destinationView(row);
    expect(v).toMatchObject({
      name: 'Main app',
      kind: 'onesignal',
      app_id: app.appId,
      api_url: emu.url,
      tag_key_template: 'amp_cohort_{cohort_id}',
      external_id_property: 'user_id',
      max_tags_per_user: 10,
      rate_limit_per_second: 1000,
      status: 'active',
      status_reason: null,
      source_id: null,
    });
    expect(JSON.stringify(v)).not.toContain(app.apiKey);
    const stored = await ctx.store.db
      .selectFrom('destinations')
      .selectAll()
      .where('id', '=', row.id)
      .executeTakeFirstOrThrow();
    expect(stored.api_key_enc).not.toContain(app.apiKey);
    expect(ctx.secrets.decrypt(stored.api_key_enc)).toBe(app.apiKey);
    expect(destinationView(await getDestination(ctx, row.id))).toEqual(v);
  });

  it('refuses a duplicate name, bad settings and an unknown source with readable messages', async () => {
    const { ctx } = db();
    await createDestination(ctx, { name: 'Dup', appId: app.appId, apiKey: 'k', apiUrl: emu.url });
    const dup = await caught(createDestination(ctx, { name: 'Dup', app_id: app.appId, api_key: 'k' }));
    expect(dup.code).toBe('conflict');
    expect(dup.message).toContain('"Dup" already exists');
    const bad = await caught(
      createDestination(ctx, { name: 'Bad', app_id: 'not-an-app', api_key: 'k', tag_key_template: 'cohort' }),
    );
    expect(bad.code).toBe('invalid_input');
    expect(bad.message).toContain('app_id');
    expect(bad.message).toContain('tag_key_template: must contain {cohort_id}');
    const src = await caught(
      createDestination(ctx, { name: 'Src', app_id: app.appId, api_key: 'k', source_id: 'src_missing' }),
    );
    expect(src.code).toBe('not_found');
    expect(src.message).toBe('source src_missing not found');
    expect((await listDestinations(ctx)).map((d) => d.name)).not.toContain('Src');
  });

  it('accepts an existing source, pauses and resumes', async () => {
    const { ctx } = db();
    await ctx.store.db
      .insertInto('sources')
      .values({
        id: 'src_t1',
        name: 'Amp',
        kind: 'amplitude',
        region: 'us',
        api_url: null,
        api_key_enc: 'x',
        secret_key_enc: 'x',
        webhook_secret_enc: 'x',
        download_budget: 500,
        created_at: Date.now(),
      })
      .execute();
    const row = await createDestination(ctx, {
      name: 'With source',
      app_id: app.appId,
      api_key: app.apiKey,
      api_url: emu.url,
      source_id: 'src_t1',
      max_tags_per_user: 20,
    });
    expect(row.source_id).toBe('src_t1');
    const paused = await pauseDestination(ctx, row.id, 'OneSignal rejected the credentials (403)');
    expect(paused.status).toBe('paused');
    expect(paused.status_reason).toContain('403');
    const resumed = await resumeDestination(ctx, row.id);
    expect(resumed.status).toBe('active');
    expect(resumed.status_reason).toBeNull();
    // Called one at a time: a rejection created before it is awaited would be reported as unhandled.
    for (const op of [
      () => getDestination(ctx, 'dst_nope'),
      () => pauseDestination(ctx, 'dst_nope', 'x'),
      () => resumeDestination(ctx, 'dst_nope'),
    ]) {
      const e = await caught(op());
      expect(e.code).toBe('not_found');
      expect(e.message).toBe('destination dst_nope not found');
    }
  });

  it('destinations on one app share one client and limiter, which reaches OneSignal', async () => {
    const { ctx } = db();
    const a = await createDestination(ctx, {
      name: 'Shared A',
      app_id: app.appId,
      api_key: app.apiKey,
      api_url: emu.url,
    });
    const b = await createDestination(ctx, {
      name: 'Shared B',
      app_id: app.appId,
      api_key: app.apiKey,
      api_url: emu.url,
    });
    const ca = clientForDestination(ctx, a);
    expect(clientForDestination(ctx, b)).toBe(ca);
    const wrong = await createDestination(ctx, {
      name: 'Wrong key',
      app_id: app.appId,
      api_key: 'wrong',
      api_url: emu.url,
    });
    const cw = clientForDestination(ctx, wrong);
    expect(cw).not.toBe(ca);
    expect(cw.limiter).toBe(ca.limiter);
    await ca.testConnection();
    const e = await caught(cw.testConnection());
    expect(e.code).toBe('vendor_auth');
  });
});

it('the catalog lists the OneSignal connector and its settings schema', async () => {
  expect(getConnector('onesignal')).toBe(catalog.onesignal);
  expect(() => getConnector('nope')).toThrow(/unknown connector/);
  const parsed = catalog.onesignal.settingsSchema.parse({ name: 'n', app_id: app.appId, api_key: 'k' });
  expect(parsed.api_url).toBe('https://api.onesignal.com');
  expect(renderTagKey('amp_cohort_{cohort_id}', { id: '123' })).toBe('amp_cohort_123');
  expect(() => renderTagKey('{cohort_id}', { id: 'user' })).toThrow(/restricted/);
  await catalog.onesignal.testAuthentication({ ...parsed, api_url: emu.url, api_key: app.apiKey });
});
