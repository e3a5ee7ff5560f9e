import { afterAll, beforeAll, expect, it } from 'vitest';
import { addDestination } from '../../src/app/destinations';
import { addSource, deleteSource, listSources, showSource, testSource, updateSource } from '../../src/app/sources';
import { refreshSourceCohorts } from '../../src/connectors/amplitude/cohorts';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';

process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';

const P1 = { apiKey: 'amp-app-test-1', secretKey: 'secret-1' };
const P2 = { apiKey: 'amp-app-test-2', secretKey: 'secret-2' };
const OS = { appId: crypto.randomUUID(), apiKey: 'os-app-sources' };
let amplitude: AmplitudeEmulator;
let onesignal: OneSignalEmulator;
beforeAll(async () => {
  amplitude = await startAmplitudeEmulator({ projects: [P1, P2], pollsBeforeReady: 1 });
  onesignal = await startOneSignalEmulator({ apps: [OS], users: { mode: 'seeded', ids: ['m1', 'm2'] } });
  amplitude.cohorts.upsert({ id: 'coh_src_a', name: 'Source A', members: [{ user_id: 'm1' }, { user_id: 'm2' }] });
});
afterAll(async () => {
  await amplitude?.close();
  await onesignal?.close();
});

describeEachDialect('app: sources', (db) => {
  it('adds a project with its webhook secret shown once; a second source for the same API key is refused naming the first', async () => {
    const { ctx } = db();
    const a = await addSource(ctx, {
      name: 'Project A',
      api_key: P1.apiKey,
      secret_key: P1.secretKey,
      api_url: amplitude.url,
    });
    expect(a).toMatchObject({ name: 'Project A', region: 'us', download_budget: 500, downloads_this_month: 0 });
    expect(a.webhook_secret.length).toBeGreaterThan(20);
    const shown = await showSource(ctx, a.id);
    expect(shown).not.toHaveProperty('webhook_secret');
    expect(JSON.stringify(shown)).not.toContain(P1.apiKey);
    expect(await showSource(ctx, a.id, { revealSecret: true })).toMatchObject({ webhook_secret: a.webhook_secret });

    const again = await caught(addSource(ctx, { name: 'Project A again', api_key: P1.apiKey, secret_key: 'x' }));
    expect(again.code).toBe('conflict');
    expect(again.message).toContain(`already the source "Project A" (${a.id})`);
    expect(again.details?.existing_id).toBe(a.id);
    const name = await caught(addSource(ctx, { name: 'Project A', api_key: P2.apiKey, secret_key: 'x' }));
    expect(name.code).toBe('conflict');
    expect(name.message).toContain(`(${a.id})`);
    const bad = await caught(addSource(ctx, { name: 'B', api_key: 'k', secret_key: 's', region: 'mars' }));
    expect(bad.message).toBe('region: must be us or eu');
    expect((await listSources(ctx)).map((s) => s.name)).toEqual(['Project A']);
  });

  it('a wrong secret key is fixed by update: the test is refused, then accepted', async () => {
    const { ctx } = db();
    const b = await addSource(ctx, {
      name: 'Project B',
      api_key: P2.apiKey,
      secret_key: 'wrong',
      api_url: amplitude.url,
    });
    expect(await testSource(ctx, b.id)).toMatchObject({ ok: false, error: 'credentials_refused' });
    const updated = await updateSource(ctx, b.id, {
      secret_key: P2.secretKey,
      download_budget: 100,
      name: 'Project B2',
    });
    expect(updated).toMatchObject({ name: 'Project B2', download_budget: 100 });
    expect(await testSource(ctx, b.id)).toMatchObject({ ok: true, source_id: b.id });
    const taken = await caught(updateSource(ctx, b.id, { api_key: P1.apiKey }));
    expect(taken.code).toBe('conflict');
    const unknownField = await caught(updateSource(ctx, b.id, { webhook_secret: 'x' }));
    expect(unknownField.message).toContain('cannot be changed: webhook_secret');
    expect(await deleteSource(ctx, b.id)).toMatchObject({ deleted: true, syncs: [] });
    expect((await caught(showSource(ctx, b.id))).code).toBe('not_found');
  });

  it('delete is refused while syncs use its cohorts, naming them; --force deletes them with their tags', async () => {
    const { ctx } = db();
    const a = (await listSources(ctx)).find((s) => s.name === 'Project A')!;
    await refreshSourceCohorts(ctx, a.id);
    const dest = await addDestination(ctx, {
      name: 'sources app',
      app_id: OS.appId,
      api_key: OS.apiKey,
      api_url: onesignal.url,
      source_id: a.id,
    });
    const sync = await createSync(ctx, { cohortId: 'coh_src_a', destinationId: dest.id });
    await runSync(ctx, sync.id, { deliver: 'inline' });
    expect(onesignal.state.getUser('m1')).toMatchObject({ [sync.tag_key]: '1' });

    const refused = await caught(deleteSource(ctx, a.id));
    expect(refused.code).toBe('conflict');
    expect(refused.message).toContain(sync.id);
    expect(refused.message).toContain('--force');
    const forced = await deleteSource(ctx, a.id, { force: true });
    expect(forced).toMatchObject({ id: a.id, deleted: true });
    expect(forced.syncs).toEqual([expect.objectContaining({ id: sync.id, deleted: true, removed: 2 })]);
    expect(onesignal.state.getUser('m1')).toEqual({});
    const cohorts = await ctx.store.db.selectFrom('cohorts').select('id').where('source_id', '=', a.id).execute();
    expect(cohorts).toEqual([]);
    // The OneSignal app stays a destination, serving no project now.
    const { showDestination } = await import('../../src/app/destinations');
    expect(await showDestination(ctx, dest.id)).toMatchObject({ source_id: null });
  });
});
