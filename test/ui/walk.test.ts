import { afterAll, beforeAll, expect, it } from 'vitest';
import { refreshCohorts } from '../../src/app/cohorts';
import { addDestination } from '../../src/app/destinations';
import { addSource } from '../../src/app/sources';
import { addSync, startRun } from '../../src/app/syncs';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { describeEachDialect } from '../helpers/db';
import { seedStream, seedStreamEvents } from '../helpers/seed';
import { cardOverflow, openUi, runBrowser, shot, type UiSession } from './harness';

const AMP = { apiKey: 'walk-amp-api-key', secretKey: 'walk-amp-secret-key' };
const OS_KEY = 'walk-os-key';
// Names and ids as long as real ones get: the pages must still fit a 1280 px screen.
const LONG = 'Users who purchased twice in the last thirty days and opened the app this week';
const LONG_ID = 'cohort_purchased_twice_last_30_days_and_opened_app_this_week_v2';

describeEachDialect('web UI: every page fits its cards at 1280 px', (db) => {
  let amp: AmplitudeEmulator;
  let emu: OneSignalEmulator;
  let ui: UiSession;
  const appId = crypto.randomUUID();
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    if (!runBrowser) return;
    const { ctx } = db();
    amp = await startAmplitudeEmulator({
      projects: [AMP],
      cohorts: [{ id: LONG_ID, name: LONG, members: ['w1', 'w2', 'w3', 'w4'].map((user_id) => ({ user_id })) }],
    });
    emu = await startOneSignalEmulator({
      apps: [{ appId, apiKey: OS_KEY }],
      users: { mode: 'seeded', ids: ['w1', 'w2', 'w3'] },
    });
    const source = await addSource(ctx, {
      name: 'Production Amplitude project of the European marketing team',
      api_key: AMP.apiKey,
      secret_key: AMP.secretKey,
      region: 'eu',
      api_url: amp.url,
    });
    await refreshCohorts(ctx, source.id);
    const dest = await addDestination(ctx, {
      name: 'OneSignal production app for the European marketing team',
      app_id: appId,
      api_key: OS_KEY,
      api_url: emu.url,
      source_id: source.id,
    });
    const sync = await addSync(ctx, { cohort_id: LONG_ID, destination_id: dest.id });
    const run = await startRun(ctx, sync.id, { waitMs: 60_000 });
    await seedStream(ctx, {
      id: 'str_walk_production_pushes_for_the_european_marketing_team',
      name: 'Production pushes of the European marketing team, all message kinds',
      amplitude_api_key: AMP.apiKey,
      webhook_secret: 'walk-stream-secret',
    });
    await seedStreamEvents(ctx, 'str_walk_production_pushes_for_the_european_marketing_team', [
      { event_id: 'ev-forwarded-1', status: 'forwarded' },
      {
        event_id: 'ev-dead-0123456789abcdef0123456789abcdef',
        status: 'dead',
        reason: `Amplitude answered 400: {"code":400,"error":"Invalid field values on some events","events_with_invalid_fields":{"user_id":[0]},"missing_field":"${'x'.repeat(120)}"}`,
      },
    ]);
    Object.assign(ids, { source: source.id, dest: dest.id, sync: sync.id, run: run.run_id });
    ui = await openUi(ctx);
  }, 120_000);
  afterAll(async () => {
    await ui?.close();
    await emu?.close();
    await amp?.close();
  });

  it.skipIf(!runBrowser)(
    'overview, list, object, form and confirmation pages: no element wider than its card',
    async () => {
      const { page, base } = ui;
      const str = 'str_walk_production_pushes_for_the_european_marketing_team';
      const pages: Array<[string, string]> = [
        ['overview', '/'],
        ['sources', '/sources'],
        ['source', `/sources/${ids.source}`],
        ['source-delete', `/sources/${ids.source}/delete`],
        ['sources-new', '/sources/new'],
        ['destinations', '/destinations'],
        ['destination', `/destinations/${ids.dest}`],
        ['destination-delete', `/destinations/${ids.dest}/delete`],
        ['destinations-new', '/destinations/new'],
        ['cohorts', '/cohorts'],
        ['cohort-delete', `/cohorts/${LONG_ID}/delete`],
        ['sync-new', `/syncs/new?cohort_id=${LONG_ID}`],
        ['sync', `/syncs/${ids.sync}`],
        ['sync-delete', `/syncs/${ids.sync}/delete`],
        ['run', `/runs/${ids.run}`],
        ['run-not-found', `/runs/${ids.run}?outcome=not_found`],
        ['streams', '/streams'],
        ['streams-new', '/streams/new'],
        ['stream', `/streams/${str}`],
        ['stream-delete', `/streams/${str}/delete`],
        ['dead-letters', `/streams/${str}/dead-letters`],
        ['alerts', '/alerts'],
        ['configuration', '/configuration'],
        ['catalog', '/catalog'],
        ['users', '/users?q=w1'],
      ];
      const overflow: Record<string, string[]> = {};
      for (const [name, path] of pages) {
        const answer = await page.goto(`${base}${path}`);
        expect(answer?.status(), path).toBe(200);
        const found = await cardOverflow(page);
        if (found.length) overflow[path] = found;
        await shot(page, `walk-${name}-${db().dialect}`);
      }
      expect(overflow).toEqual({});
      expect(ui.scriptErrors).toEqual([]);
    },
    180_000,
  );
});
