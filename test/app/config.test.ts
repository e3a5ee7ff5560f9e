import { afterAll, beforeAll, expect, it } from 'vitest';
import { applyConfig, exportConfig, loadConfig, planConfig, planLines } from '../../src/app/config';
import { clientForDestination, getDestination } from '../../src/connectors/onesignal/destinations';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import type { Context } from '../../src/store';
import { runSync } from '../../src/sync/run';
import { configYaml } from '../helpers/config-yaml';
import { describeEachDialect } from '../helpers/db';
import { caught } from '../helpers/errors';

process.env.AMPSIGNAL_AMPLITUDE_POLL_MS = '10';

const AMP = { apiKey: `amp-config-${crypto.randomUUID()}`, secretKey: `amp-secret-${crypto.randomUUID()}` };
const OS = { appId: crypto.randomUUID(), apiKey: `os-config-${crypto.randomUUID()}` };
const OS_ROTATED = `os-rotated-${crypto.randomUUID()}`;
const STREAM_KEY = `amp-stream-${crypto.randomUUID()}`;
let amplitude: AmplitudeEmulator;
let onesignal: OneSignalEmulator;

const ENV = {
  AMP_API_KEY: AMP.apiKey,
  AMP_SECRET_KEY: AMP.secretKey,
  ONESIGNAL_KEY: OS.apiKey,
  STREAM_KEY,
};
const SECRETS = [AMP.apiKey, AMP.secretKey, OS.apiKey, OS_ROTATED, STREAM_KEY];

function fileText(opts: { rate?: number; cadence?: string; withStream?: boolean; syncExtra?: string } = {}): string {
  return configYaml({
    amplitudeUrl: amplitude.url,
    onesignalUrl: onesignal.url,
    appId: OS.appId,
    vars: { ampKey: 'AMP_API_KEY', ampSecret: 'AMP_SECRET_KEY', osKey: 'ONESIGNAL_KEY' },
    cohort: 'coh_cfg',
    cadence: opts.cadence ?? 'manual',
    rate: opts.rate ?? 1000,
    ...(opts.withStream === false ? {} : { stream: { keyVar: 'STREAM_KEY' } }),
    ...(opts.syncExtra === undefined ? {} : { syncExtra: opts.syncExtra }),
  });
}

/** Every stored row of the configured tables, as text: what a look into the database shows. */
async function storedText(ctx: Context): Promise<string> {
  const db = ctx.store.db;
  const rows = await Promise.all(
    (['sources', 'destinations', 'streams', 'syncs', 'cohorts'] as const).map((t) =>
      db.selectFrom(t).selectAll().execute(),
    ),
  );
  return JSON.stringify(rows);
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

describeEachDialect('app: configuration as code', (db) => {
  // Emulators per database: the segment a sync creates is named after its cohort, once per app.
  beforeAll(async () => {
    amplitude = await startAmplitudeEmulator({ projects: [AMP], pollsBeforeReady: 1 });
    onesignal = await startOneSignalEmulator({ apps: [OS], users: { mode: 'seeded', ids: ['u1', 'u2'] } });
    amplitude.cohorts.upsert({ id: 'coh_cfg', name: 'Config cohort', members: [{ user_id: 'u1' }, { user_id: 'u2' }] });
    amplitude.cohorts.upsert({ id: 'coh_cfg2', name: 'Second cohort', members: [{ user_id: 'u2' }] });
  });
  afterAll(async () => {
    await amplitude?.close();
    await onesignal?.close();
  });

  it('plan on an empty database lists creates; apply creates; a second apply changes nothing and says so', async () => {
    const { ctx } = db();
    const loaded = loadConfig(fileText(), { env: ENV });
    const plan = await planConfig(ctx, loaded);
    expect(plan.items.map((i) => `${i.action} ${i.kind} ${i.name}`)).toEqual([
      'create source Production',
      'create destination Main app',
      'create stream events',
      'create sync coh_cfg → Main app',
    ]);
    expect(plan.summary).toMatchObject({ create: 4, update: 0, delete: 0, kept: 0 });
    const text = planLines(plan).join('\n');
    expect(text).toContain('api_key: from ${ONESIGNAL_KEY}');
    expect(text).toContain('Plan: 4 to create, 0 to change, 0 to delete.');
    expectNoSecret(text);
    expectNoSecret(JSON.stringify(plan));

    const first = await applyConfig(ctx, loaded);
    expect(first.applied.map((a) => `${a.action} ${a.kind}`)).toEqual([
      'create source',
      'create destination',
      'create stream',
      'create sync',
    ]);
    const sync = await ctx.store.db.selectFrom('syncs').selectAll().executeTakeFirstOrThrow();
    const dest = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
    const source = await ctx.store.db.selectFrom('sources').selectAll().executeTakeFirstOrThrow();
    expect(dest).toMatchObject({ name: 'Main app', app_id: OS.appId, source_id: source.id });
    expect(sync).toMatchObject({ cohort_id: 'coh_cfg', destination_id: dest.id, cadence: 'manual' });
    expect(sync.segment_id).not.toBeNull();
    // The configured objects work: the keys from the environment reach both vendors.
    await runSync(ctx, sync.id, { deliver: 'inline' });
    expect(onesignal.state.getUser('u1')).toMatchObject({ [sync.tag_key]: '1' });
    expectNoSecret(await storedText(ctx));

    const second = await applyConfig(ctx, loadConfig(fileText(), { env: ENV }));
    expect(second.applied).toEqual([]);
    expect(second.message).toBe('No changes: the database already matches ampsignal.yaml');
    expect(planLines(await planConfig(ctx, loaded)).join('\n')).toBe(
      'No changes: the database matches ampsignal.yaml.',
    );
  });

  it('an edited file shows each change in plan (a rotated key by its variable only) and apply makes it', async () => {
    const { ctx } = db();
    const env = { ...ENV, ONESIGNAL_KEY: OS_ROTATED };
    const loaded = loadConfig(fileText({ rate: 50 }), { env });
    const plan = await planConfig(ctx, loaded);
    expect(plan.items).toEqual([
      expect.objectContaining({
        action: 'update',
        kind: 'destination',
        name: 'Main app',
        line: 8,
        changes: [
          { field: 'rate_limit_per_second', from: '1000', to: '50' },
          { field: 'api_key', from: null, to: '${ONESIGNAL_KEY}', secret: true },
        ],
      }),
    ]);
    const text = planLines(plan).join('\n');
    expect(text).toContain('rate_limit_per_second: 1000 → 50');
    expect(text).toContain('api_key: changed, now from ${ONESIGNAL_KEY}');
    expectNoSecret(text);

    const r = await applyConfig(ctx, loaded);
    expect(r.applied).toEqual([expect.objectContaining({ action: 'update', kind: 'destination' })]);
    const dest = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
    expect(Number(dest.rate_limit_per_second)).toBe(50);
    expect(ctx.secrets.decrypt(dest.api_key_enc)).toBe(OS_ROTATED);
    expectNoSecret(await storedText(ctx));
    expect((await applyConfig(ctx, loaded)).applied).toEqual([]);
  });

  it('what the file no longer lists is shown and kept; apply --prune deletes it', async () => {
    const { ctx } = db();
    const env = { ...ENV, ONESIGNAL_KEY: OS_ROTATED };
    const loaded = loadConfig(fileText({ rate: 50, withStream: false }), { env });
    const plan = await planConfig(ctx, loaded);
    expect(plan.items).toEqual([expect.objectContaining({ action: 'delete', kind: 'stream', name: 'events' })]);
    expect(plan.summary).toMatchObject({ delete: 0, kept: 1 });
    expect(planLines(plan).at(-1)).toContain('1 object(s) not in the file are kept; apply --prune deletes them');
    const kept = await applyConfig(ctx, loaded);
    expect(kept.applied).toEqual([]);
    expect(await ctx.store.db.selectFrom('streams').select('name').execute()).toEqual([{ name: 'events' }]);

    const pruned = await applyConfig(ctx, loaded, { prune: true });
    expect(pruned.applied).toEqual([expect.objectContaining({ action: 'delete', kind: 'stream', name: 'events' })]);
    expect(await ctx.store.db.selectFrom('streams').select('name').execute()).toEqual([]);
    expect((await applyConfig(ctx, loaded, { prune: true })).applied).toEqual([]);
  });

  it("a sync's cadence and guard change in place; a tag value change is refused naming the line, and nothing is applied", async () => {
    const { ctx } = db();
    const env = { ...ENV, ONESIGNAL_KEY: OS_ROTATED };
    const edited = loadConfig(
      fileText({ rate: 50, withStream: false, cadence: 'daily', syncExtra: '    guard_threshold: 0.3\n' }),
      { env },
    );
    const plan = await planConfig(ctx, edited);
    expect(plan.items).toEqual([
      expect.objectContaining({
        action: 'update',
        kind: 'sync',
        line: 15,
        changes: [
          { field: 'cadence', from: 'manual', to: 'daily' },
          { field: 'guard_threshold', from: '0.5', to: '0.3' },
        ],
      }),
    ]);
    await applyConfig(ctx, edited);
    const sync = await ctx.store.db.selectFrom('syncs').selectAll().executeTakeFirstOrThrow();
    expect({ cadence: sync.cadence, guard: Number(sync.guard_threshold) }).toEqual({ cadence: 'daily', guard: 0.3 });
    expect(sync.next_run_at).not.toBeNull();

    const retag = loadConfig(
      fileText({
        rate: 60,
        withStream: false,
        cadence: 'daily',
        syncExtra: '    guard_threshold: 0.3\n    tag_value: entered_at\n',
      }),
      { env },
    );
    const blocked = await planConfig(ctx, retag);
    expect(blocked.summary.blocked).toBe(1);
    expect(planLines(blocked).join('\n')).toContain("! cannot apply: a sync's tag value cannot change in place");
    const refused = await caught(applyConfig(ctx, retag));
    expect(refused.code).toBe('conflict');
    expect(refused.message).toContain('nothing applied: sync "coh_cfg → Main app" (ampsignal.yaml:15)');
    const dest = await ctx.store.db.selectFrom('destinations').selectAll().executeTakeFirstOrThrow();
    expect(Number(dest.rate_limit_per_second)).toBe(50);
  });

  it('export writes the configuration with keys as references; planning the export with its variables changes nothing', async () => {
    const { ctx } = db();
    const text = await exportConfig(ctx);
    expectNoSecret(text);
    expect(text).toContain('api_key: ${DESTINATION_MAIN_APP_API_KEY}');
    expect(text).toContain('secret_key: ${SOURCE_PRODUCTION_SECRET_KEY}');
    expect(text).toContain('cohort: coh_cfg # Config cohort');
    const loaded = loadConfig(text, {
      env: {
        SOURCE_PRODUCTION_API_KEY: AMP.apiKey,
        SOURCE_PRODUCTION_SECRET_KEY: AMP.secretKey,
        DESTINATION_MAIN_APP_API_KEY: OS_ROTATED,
        STREAM_EVENTS_AMPLITUDE_API_KEY: STREAM_KEY,
      },
    });
    expect((await planConfig(ctx, loaded)).items).toEqual([]);
  });

  it('errors name the line: a bad field, an unknown field, an unset variable, a key written in clear', async () => {
    const bad = fileText()
      .replace('cadence: manual', 'cadence: weekly')
      .replace('    source: Production\n', '    colour: blue\n');
    const e = await caught(Promise.resolve().then(() => loadConfig(bad, { env: ENV })));
    expect(e.code).toBe('invalid_input');
    expect(e.message).toContain('ampsignal.yaml:11: destinations[0]: unknown field(s): colour');
    expect(e.message).toMatch(/ampsignal\.yaml:23: syncs\[0\]\.cadence: .*must be one of manual/);

    const { ONESIGNAL_KEY: _, ...missing } = ENV;
    const unset = await caught(Promise.resolve().then(() => loadConfig(fileText(), { env: missing })));
    expect(unset.message).toBe(
      'ampsignal.yaml:10: destinations[0].api_key: environment variable ONESIGNAL_KEY is not set',
    );

    const clear = fileText().replace('${ONESIGNAL_KEY}', OS.apiKey);
    const inClear = await caught(Promise.resolve().then(() => loadConfig(clear, { env: ENV })));
    expect(inClear.message).toContain(
      'ampsignal.yaml:10: destinations[0].api_key: must be an environment variable reference',
    );
    expect(inClear.message).not.toContain(OS.apiKey);

    const syntax = await caught(Promise.resolve().then(() => loadConfig('sources:\n  - name: [a\n', { env: ENV })));
    expect(syntax.message).toMatch(/^ampsignal\.yaml:\d: /);
  });

  it('a sync the file no longer lists is deleted by apply --prune only, its tag removed at OneSignal', async () => {
    const { ctx } = db();
    // The emulator takes only the app's real key: rotate back before tags are removed.
    const env = ENV;
    const sync = await ctx.store.db.selectFrom('syncs').selectAll().executeTakeFirstOrThrow();
    expect(onesignal.state.getUser('u1')).toMatchObject({ [sync.tag_key]: '1' });
    const text = fileText({ rate: 50, withStream: false, cadence: 'daily', syncExtra: '    guard_threshold: 0.3\n' });
    const loaded = loadConfig(text.slice(0, text.indexOf('syncs:')), { env });
    const plan = await planConfig(ctx, loaded);
    expect(planLines(plan).join('\n')).toContain(`removes its tag ${sync.tag_key} from every user at OneSignal`);
    const kept = await applyConfig(ctx, loaded);
    expect(kept.applied).toEqual([expect.objectContaining({ action: 'update', kind: 'destination' })]);
    expect(kept.message).toContain('1 object(s) not in the file kept');
    expect(onesignal.state.getUser('u1')).toMatchObject({ [sync.tag_key]: '1' });
    const pruned = await applyConfig(ctx, loaded, { prune: true });
    expect(pruned.applied).toEqual([expect.objectContaining({ action: 'delete', kind: 'sync', id: sync.id })]);
    expect(pruned.message).toBe('Applied ampsignal.yaml: 0 created, 0 changed, 1 deleted');
    expect(onesignal.state.getUser('u1')).toEqual({});
    expect(await ctx.store.db.selectFrom('syncs').select('id').execute()).toEqual([]);
  });

  it("apply creates syncs through the app's operation: a segment name OneSignal already has is refused as `sync create` refuses it", async () => {
    const { ctx } = db();
    const dest = await ctx.store.db.selectFrom('destinations').select('id').executeTakeFirstOrThrow();
    const taken = await clientForDestination(ctx, await getDestination(ctx, dest.id)).createSegment('Second cohort', {
      field: 'tag',
      key: 'other',
      relation: 'exists',
    });
    const text = fileText({ withStream: false });
    const loaded = loadConfig(`${text}  - cohort: coh_cfg2\n    destination: Main app\n`, { env: ENV });
    const e = await caught(applyConfig(ctx, loaded));
    expect(e.code).toBe('conflict');
    expect(e.message).toContain('create sync "coh_cfg2 → Main app" (line 18) failed after 2 change(s) applied');
    expect(e.message).toContain(`already has a segment named "Second cohort" (segment ${taken.id})`);
    expect(await ctx.store.db.selectFrom('syncs').select('cohort_id').execute()).toEqual([{ cohort_id: 'coh_cfg' }]);
  });
});
