import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  addDestination,
  deleteDestination,
  listDestinations,
  pauseDestination,
  resumeDestination,
  showDestination,
  testDestination,
  updateDestination,
} from '../../src/app/destinations';
import { catalog, getConnector } from '../../src/connectors/catalog';
import { clientForDestination, getDestination } from '../../src/connectors/onesignal/destinations';
import { renderTagKey } from '../../src/connectors/onesignal/tag-keys';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { runSync } from '../../src/sync/run';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';
import { cohortSync, setupApp } from '../sync/setup';

let emu: OneSignalEmulator;
const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
const other = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
beforeAll(async () => {
  emu = await startOneSignalEmulator({ apps: [app, other], users: { mode: 'seeded', count: 10 } });
});
afterAll(async () => {
  await emu?.close();
});

describeEachDialect('app: destinations', (db) => {
  it('adds with defaults, stores the key encrypted and never shows it', async () => {
    const { ctx } = db();
    const v = await addDestination(ctx, {
      name: 'Main app',
      app_id: app.appId.toUpperCase(),
      api_key: app.apiKey,
      api_url: `${emu.url}/`,
    });
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
      pending_rows: 0,
    });
    expect(JSON.stringify(v)).not.toContain(app.apiKey);
    const stored = await getDestination(ctx, v.id);
    expect(stored.api_key_enc).not.toContain(app.apiKey);
    expect(ctx.secrets.decrypt(stored.api_key_enc)).toBe(app.apiKey);
    expect(await showDestination(ctx, v.id)).toEqual(v);
  });

  it('refuses a second destination for one OneSignal app, a taken name, bad settings and an unknown source, naming the existing object', async () => {
    const { ctx } = db();
    const main = (await listDestinations(ctx)).find((d) => d.name === 'Main app')!;
    const sameApp = await caught(addDestination(ctx, { name: 'Again', app_id: app.appId, api_key: 'k' }));
    expect(sameApp.code).toBe('conflict');
    expect(sameApp.message).toContain(`OneSignal app ${app.appId} is already the destination "Main app" (${main.id})`);
    expect(sameApp.details?.existing_id).toBe(main.id);
    const dup = await caught(addDestination(ctx, { name: 'Main app', app_id: other.appId, api_key: 'k' }));
    expect(dup.code).toBe('conflict');
    expect(dup.message).toContain(`"Main app" already exists (${main.id})`);
    const bad = await caught(
      addDestination(ctx, { name: 'Bad', app_id: 'not-an-app', api_key: 'k', tag_key_template: 'cohort' }),
    );
    expect(bad.code).toBe('invalid_input');
    expect(bad.message).toContain('app_id: must be a OneSignal App ID');
    expect(bad.message).toContain('tag_key_template: must contain {cohort_id}');
    const src = await caught(
      addDestination(ctx, { name: 'Src', app_id: other.appId, api_key: 'k', source_id: 'src_missing' }),
    );
    expect(src.code).toBe('not_found');
    expect(src.message).toContain('source src_missing not found');
    expect((await listDestinations(ctx)).map((d) => d.name)).toEqual(['Main app']);
  });

  it('a rotated key is fixed by update: the test fails with the old key and passes with the new one', async () => {
    const { ctx } = db();
    const v = await addDestination(ctx, { name: 'Rotated', app_id: other.appId, api_key: 'old', api_url: emu.url });
    expect(await testDestination(ctx, v.id)).toMatchObject({ ok: false, error: 'credentials_refused' });
    const updated = await updateDestination(ctx, v.id, {
      api_key: other.apiKey,
      max_tags_per_user: 20,
      name: 'Rotated key',
    });
    expect(updated).toMatchObject({ name: 'Rotated key', max_tags_per_user: 20, app_id: other.appId });
    expect(await testDestination(ctx, v.id)).toMatchObject({ ok: true, destination_id: v.id, app_id: other.appId });
    const appChange = await caught(updateDestination(ctx, v.id, { app_id: app.appId }));
    expect(appChange.code).toBe('invalid_input');
    expect(appChange.message).toContain('cannot be changed: app_id');
    const nameTaken = await caught(updateDestination(ctx, v.id, { name: 'Main app' }));
    expect(nameTaken.code).toBe('conflict');
    await deleteDestination(ctx, v.id, { removeTags: false });
  });

  it('pauses with a reason and resumes; unknown ids are not_found', async () => {
    const { ctx } = db();
    const main = (await listDestinations(ctx)).find((d) => d.name === 'Main app')!;
    const paused = await pauseDestination(ctx, main.id, 'maintenance');
    expect(paused).toMatchObject({ status: 'paused', status_reason: 'maintenance' });
    const empty = await caught(pauseDestination(ctx, main.id, '  '));
    expect(empty.message).toBe('reason: must not be empty');
    expect(await resumeDestination(ctx, main.id)).toMatchObject({ status: 'active', status_reason: null });
    for (const op of [
      () => showDestination(ctx, 'dst_nope'),
      () => pauseDestination(ctx, 'dst_nope', 'x'),
      () => resumeDestination(ctx, 'dst_nope'),
      () => updateDestination(ctx, 'dst_nope', { name: 'x' }),
      () => deleteDestination(ctx, 'dst_nope', { removeTags: true }),
    ]) {
      const e = await caught(op());
      expect(e.code).toBe('not_found');
    }
  });

  it('once synced: the tag template and id mapping are refused with the sync named; delete removes tags and segments, or keeps them', async () => {
    const { ctx } = db();
    const users = ['u1', 'u2', 'u3'];
    const a = await setupApp(ctx, { users });
    const b = await setupApp(ctx, { users });
    try {
      const syncA = await cohortSync(ctx, a.dest.id, ['u1', 'u2', 'ghost']);
      const syncB = await cohortSync(ctx, b.dest.id, ['u1', 'u3']);
      await runSync(ctx, syncA.sync.id, { deliver: 'inline' });
      await runSync(ctx, syncB.sync.id, { deliver: 'inline' });
      expect(a.emu.state.getUser('u1')).toMatchObject({ [syncA.sync.tag_key]: '1' });
      expect(a.emu.state.segments()).toHaveLength(1);

      const tpl = await caught(updateDestination(ctx, a.dest.id, { tag_key_template: 'x_{cohort_id}' }));
      expect(tpl.code).toBe('conflict');
      expect(tpl.message).toContain(`cannot change the tag key template of ${a.dest.id}`);
      expect(tpl.message).toContain(syncA.sync.id);
      const map = await caught(updateDestination(ctx, a.dest.id, { external_id_property: 'email' }));
      expect(map.message).toContain('id mapping');
      // An unchanged value is no change.
      await updateDestination(ctx, a.dest.id, { tag_key_template: 'amp_cohort_{cohort_id}' });

      const removed = await deleteDestination(ctx, a.dest.id, { removeTags: true });
      expect(removed).toMatchObject({ id: a.dest.id, deleted: true, removed_tags: true });
      // Only users OneSignal carried the tag for are reported: 'ghost' was never found.
      expect(removed.syncs).toEqual([
        expect.objectContaining({ id: syncA.sync.id, deleted: true, removed: 2, pending: 0, segment_error: null }),
      ]);
      expect(a.emu.state.getUser('u1')).toEqual({});
      expect(a.emu.state.segments()).toHaveLength(0);
      expect(await ctx.store.db.selectFrom('syncs').select('id').where('id', '=', syncA.sync.id).execute()).toEqual([]);

      const kept = await deleteDestination(ctx, b.dest.id, { removeTags: false });
      expect(kept).toMatchObject({ deleted: true, removed_tags: false, syncs: [] });
      expect(b.emu.state.getUser('u1')).toMatchObject({ [syncB.sync.tag_key]: '1' });
      expect(b.emu.state.segments()).toHaveLength(1);
      expect((await caught(showDestination(ctx, b.dest.id))).code).toBe('not_found');
      const ledger = await ctx.store.db
        .selectFrom('ledger')
        .select('sync_id')
        .where('destination_id', 'in', [a.dest.id, b.dest.id])
        .execute();
      expect(ledger).toEqual([]);
    } finally {
      await a.emu.close();
      await b.emu.close();
    }
  });

  it('the process shares one client per app + key; a different key gets its own client on the same limiter', async () => {
    const { ctx } = db();
    const main = (await listDestinations(ctx)).find((d) => d.name === 'Main app')!;
    const row = await getDestination(ctx, main.id);
    const ca = clientForDestination(ctx, row);
    expect(clientForDestination(ctx, await getDestination(ctx, main.id))).toBe(ca);
    const cw = clientForDestination(ctx, { ...row, api_key_enc: ctx.secrets.encrypt('wrong') });
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
