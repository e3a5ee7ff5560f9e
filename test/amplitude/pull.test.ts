import { afterAll, beforeAll, expect, it } from 'vitest';
import { runSummary } from '../../src/cli/runs';
import { downloadsThisMonth } from '../../src/connectors/amplitude/budget';
import { approveRun, runSync } from '../../src/sync/run';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { type Emulators, ledgerRows, sourceAndDestination, startCuttingProxy, startEmulators } from './fixtures';

const users = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);

describeEachDialect('Amplitude pull (Behavioral Cohorts download into the ledger)', (db) => {
  let emu: Emulators;
  const seeded = [
    ...users('small', 20),
    ...users('big', 300),
    ...users('p', 10).map((u) => `${u}@mail.io`),
    ...users('cut', 400),
  ];
  beforeAll(async () => {
    // redirectAbove 100: the 300-member cohort comes as a 302 to the "S3" URL, the 20-member one inline.
    emu = await startEmulators({ redirectAbove: 100, pollsBeforeReady: 3 }, seeded);
  });
  afterAll(async () => {
    await emu?.close();
  });

  it('pulls a small cohort inline (gzip, tab-prefixed CSV), polling until ready, and tags every member', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_small',
      name: 'Small cohort',
      members: [...users('small', 20).map((user_id) => ({ user_id })), { amplitude_id: 555 }, { amplitude_id: 556 }],
    });
    const before = emu.amplitude.stats().cohorts;
    const downloadsBefore = emu.amplitude.cohorts.downloads();
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_small'),
      destinationId: dest.id,
      cadence: 'daily',
    });
    const run = await runSync(ctx, sync.id);
    expect(run.status).toBe('completed');
    expect(run.members).toBe(20);
    expect(run.skipped_anonymous).toBe(2);
    expect(run.added).toBe(20);
    expect(run.delivered).toBe(20);
    expect(emu.onesignal.state.getUser('small-7')).toMatchObject({ [sync.tag_key]: '1' });
    const after = emu.amplitude.stats().cohorts;
    // 3 "JOB INPROGRESS" polls + the request's own 202; one download spent on each side.
    expect((after.requests['202'] ?? 0) - (before.requests['202'] ?? 0)).toBe(4);
    expect(emu.amplitude.cohorts.downloads()).toBe(downloadsBefore + 1);
    expect(await downloadsThisMonth(ctx, source.id)).toBe(1);
    const cohort = await ctx.store.db
      .selectFrom('cohorts')
      .selectAll()
      .where('id', '=', 'coh_small')
      .executeTakeFirstOrThrow();
    expect(cohort.origin).toBe('amplitude');
    expect(cohort.last_computed).toBeGreaterThan(Date.now() - 60_000);
    // The ledger carries Amplitude's lastComputed as the source timestamp.
    const rows = await ledgerRows(ctx, sync.id);
    expect(rows.every((r) => Number(r.source_ts) === Number(cohort.last_computed))).toBe(true);
  });

  it('follows the 302 to the pre-signed URL without our credentials, and a second pull removes who left', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_big',
      name: 'Big cohort',
      members: users('big', 300).map((user_id) => ({ user_id })),
    });
    const redirects = emu.amplitude.stats().cohorts.redirects;
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_big'),
      destinationId: dest.id,
      cadence: 'manual',
    });
    const first = await runSync(ctx, sync.id);
    expect(first).toMatchObject({ status: 'completed', members: 300, added: 300, delivered: 300 });
    expect(emu.amplitude.stats().cohorts.redirects).toBe(redirects + 1);

    emu.amplitude.cohorts.removeMembers('coh_big', users('big', 10));
    const second = await runSync(ctx, sync.id);
    expect(second).toMatchObject({ status: 'completed', members: 290, added: 0, removed: 10, delivered: 10 });
    expect(emu.onesignal.state.getUser('big-3')?.[sync.tag_key]).toBeUndefined();
    expect(emu.onesignal.state.getUser('big-30')).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('maps identity to a user property (props=1&propKeys=P) and skips members without it', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url, {
      externalIdProperty: 'email',
    });
    emu.amplitude.cohorts.upsert({
      id: 'coh_prop',
      name: 'By email',
      members: [
        ...users('p', 10).map((u) => ({ user_id: u, properties: { email: `${u}@mail.io`, city: 'Paris' } })),
        { user_id: 'no-email', properties: { city: 'Lyon' } },
      ],
    });
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_prop'),
      destinationId: dest.id,
      cadence: 'manual',
    });
    expect(sync.external_id_property).toBe('email');
    const run = await runSync(ctx, sync.id);
    expect(run).toMatchObject({ status: 'completed', members: 10, skipped_anonymous: 1, delivered: 10 });
    const rows = await ledgerRows(ctx, sync.id);
    expect(rows.map((r) => r.external_id)).toContain('p-3@mail.io');
    expect(rows.map((r) => r.external_id)).not.toContain('p-3');
    expect(emu.onesignal.state.getUser('p-3@mail.io')).toMatchObject({ [sync.tag_key]: '1' });
  });

  it('waits out a 429 on the request call and spends the budget once', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_429',
      name: 'Throttled',
      members: users('small', 5).map((user_id) => ({ user_id })),
    });
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_429'),
      destinationId: dest.id,
      cadence: 'manual',
    });
    const downloadsBefore = emu.amplitude.cohorts.downloads();
    // The pull lists cohorts first (free), then requests: 1 + 2 scripted 429s hit list, request, request.
    emu.amplitude.cohorts.forceNext(
      429,
      { error: { http_code: 429, type: 'too_many_requests', message: 'Too many concurrent requests' } },
      3,
    );
    const run = await runSync(ctx, sync.id);
    expect(run).toMatchObject({ status: 'completed', members: 5 });
    expect(emu.amplitude.cohorts.downloads()).toBe(downloadsBefore + 1);
    expect(await downloadsThisMonth(ctx, source.id)).toBe(1);
  });

  it('retries a 5xx on the request call within the one download the budget counts', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_503',
      name: 'Flaky',
      members: users('small', 3).map((user_id) => ({ user_id })),
    });
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_503'),
      destinationId: dest.id,
      cadence: 'manual',
    });
    const downloadsBefore = emu.amplitude.cohorts.downloads();
    // One 503 for the (free) list call, one for the request call, which is retried.
    emu.amplitude.cohorts.forceNext(503, undefined, 2);
    expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', members: 3 });
    expect(emu.amplitude.cohorts.downloads()).toBe(downloadsBefore + 1);
    expect(await downloadsThisMonth(ctx, source.id)).toBe(1);
  });

  it('refuses a sync whose cadence exceeds the budget, with the arithmetic, and refuses a pull once the month is spent', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url, { budget: 40 });
    emu.amplitude.cohorts.upsert({ id: 'coh_b1', name: 'Budget 1', members: [{ user_id: 'small-1' }] });
    emu.amplitude.cohorts.upsert({ id: 'coh_b2', name: 'Budget 2', members: [{ user_id: 'small-2' }] });
    await knownCohort(ctx, source.id, 'coh_b1');
    await createSync(ctx, { cohortId: 'coh_b1', destinationId: dest.id, cadence: 'daily' });
    const refused = createSync(ctx, { cohortId: 'coh_b2', destinationId: dest.id, cadence: 'hourly' });
    await expect(refused).rejects.toMatchObject({ code: 'budget_exhausted' });
    await expect(refused).rejects.toThrow(
      /hourly = about 720 downloads a month; .* already plans 30 of its 40 .*30 \+ 720 = 750 > 40/,
    );
    await expect(createSync(ctx, { cohortId: 'coh_b2', destinationId: dest.id, cadence: 'daily' })).rejects.toThrow(
      /30 \+ 30 = 60 > 40/,
    );
    expect(
      await ctx.store.db.selectFrom('syncs').select('id').where('cohort_id', '=', 'coh_b2').execute(),
    ).toHaveLength(0);

    // Pull-time: a budget of 1 allows one download this month, then refuses without calling Amplitude.
    const tight = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url, { budget: 1 });
    emu.amplitude.cohorts.upsert({ id: 'coh_b3', name: 'Budget 3', members: [{ user_id: 'small-3' }] });
    await knownCohort(ctx, tight.source.id, 'coh_b3');
    const s3 = await createSync(ctx, { cohortId: 'coh_b3', destinationId: tight.dest.id, cadence: 'manual' });
    expect((await runSync(ctx, s3.id)).status).toBe('completed');
    const downloads = emu.amplitude.cohorts.downloads();
    const second = await runSync(ctx, s3.id);
    expect(second.status).toBe('failed');
    expect(second.error).toMatch(/used 1 of its 1 cohort downloads/);
    expect(emu.amplitude.cohorts.downloads()).toBe(downloads);
  });

  it('a download that fails midway leaves the ledger as it was (and is counted)', async () => {
    const { ctx } = db();
    const proxy = await startCuttingProxy(emu.amplitude.url);
    try {
      const { source, dest } = await sourceAndDestination(ctx, proxy.url, emu.onesignal.url);
      emu.amplitude.cohorts.upsert({
        id: 'coh_cut',
        name: 'Cut',
        members: users('cut', 400).map((user_id) => ({ user_id })),
      });
      const sync = await createSync(ctx, {
        cohortId: await knownCohort(ctx, source.id, 'coh_cut'),
        destinationId: dest.id,
        cadence: 'manual',
      });
      expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', members: 400 });
      const before = await ledgerRows(ctx, sync.id);

      // Half the members leave; the download of the new snapshot is cut after 200 bytes, and the
      // file's second fetch is refused (a 404 is not worth retrying): the pull fails half-staged.
      emu.amplitude.cohorts.removeMembers('coh_cut', users('cut', 200));
      proxy.cut = /^\/_s3\//;
      proxy.times = 1;
      proxy.fault = { path: /\/file$/, with: 404, after: 1, times: 1 };
      const failed = await runSync(ctx, sync.id);
      expect(failed.status).toBe('failed');
      expect(failed.error).toMatch(/cohort file/);
      expect(await ledgerRows(ctx, sync.id)).toEqual(before);
      const staging = await ctx.store.db
        .selectFrom('staging')
        .select('run_id')
        .where('run_id', '=', failed.id)
        .execute();
      expect(staging).toHaveLength(0);
      expect(emu.onesignal.state.getUser('cut-1')).toMatchObject({ [sync.tag_key]: '1' });
      expect(await downloadsThisMonth(ctx, source.id)).toBe(2);

      // A cut alone is survived: the file link is fetched again, without a second download.
      proxy.times = 1;
      const recovered = await runSync(ctx, sync.id);
      expect(recovered).toMatchObject({ status: 'completed', members: 200, removed: 200 });
      expect(await downloadsThisMonth(ctx, source.id)).toBe(3);
      expect(emu.onesignal.state.getUser('cut-1')?.[sync.tag_key]).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it('a dry run counts a pull without writing; a held pull applies, once approved, the snapshot that was reviewed', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_guard',
      name: 'Guarded',
      members: users('small', 20).map((user_id) => ({ user_id })),
    });
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_guard'),
      destinationId: dest.id,
      cadence: 'manual',
      guardThreshold: 0.2,
    });
    const dry = await runSync(ctx, sync.id, { dryRun: true });
    expect(dry).toMatchObject({
      status: 'dry_run',
      members: 20,
      added: 20,
      removed: 0,
      unchanged: 0,
      pending: 20,
      delivered: 0,
    });
    expect((dry.sample as { adds: string[] }).adds).toEqual(users('small', 20).sort().slice(0, 10));
    expect(await ledgerRows(ctx, sync.id)).toHaveLength(0);
    expect(await runSync(ctx, sync.id)).toMatchObject({ status: 'completed', members: 20, added: 20, delivered: 20 });

    // 15 of 20 leave: held. Then the cohort changes again before anyone approves.
    emu.amplitude.cohorts.removeMembers('coh_guard', users('small', 15));
    const held = await runSync(ctx, sync.id);
    expect(held).toMatchObject({ status: 'held', members: 5, removed: 15, added: 0, unchanged: 5, pending: 15 });
    expect(
      await ctx.store.db.selectFrom('staging').select('external_id').where('run_id', '=', held.id).execute(),
    ).toHaveLength(5);
    emu.amplitude.cohorts.removeMembers('coh_guard', users('small', 20));
    const approved = await approveRun(ctx, held.id);
    expect(approved).toMatchObject({ status: 'completed', members: 5, removed: 15, delivered: 15, pending: 0 });
    expect(emu.onesignal.state.getUser('small-3')?.[sync.tag_key]).toBeUndefined();
    expect(emu.onesignal.state.getUser('small-17')).toMatchObject({ [sync.tag_key]: '1' });
    expect(
      await ctx.store.db.selectFrom('staging').select('external_id').where('run_id', '=', held.id).execute(),
    ).toHaveLength(0);
  });

  it('an Amplitude dry run says it spent a download and how many remain; --use-last-snapshot spends none', async () => {
    const { ctx } = db();
    const { source, dest } = await sourceAndDestination(ctx, emu.amplitude.url, emu.onesignal.url);
    emu.amplitude.cohorts.upsert({
      id: 'coh_budget',
      name: 'Budgeted',
      members: users('small', 20).map((user_id) => ({ user_id })),
    });
    const sync = await createSync(ctx, {
      cohortId: await knownCohort(ctx, source.id, 'coh_budget'),
      destinationId: dest.id,
      cadence: 'manual',
    });
    // Never downloaded: the last snapshot cannot stand in, and the refusal says why.
    const refused = await runSync(ctx, sync.id, { dryRun: true, useLastSnapshot: true });
    expect(refused).toMatchObject({ status: 'failed', error: expect.stringMatching(/never downloaded/) });
    const before = await downloadsThisMonth(ctx, source.id);
    const dry = await runSync(ctx, sync.id, { dryRun: true });
    expect(await downloadsThisMonth(ctx, source.id)).toBe(before + 1);
    expect(dry.sample).toMatchObject({
      download: { spent: 1, used_this_month: before + 1, budget: 500, remaining: 500 - before - 1 },
    });
    expect(runSummary(dry)).toMatch(/spent 1 of the source's monthly cohort downloads; \d+ of 500 remain this month/);
    const real = await runSync(ctx, sync.id);
    expect(real).toMatchObject({ status: 'completed', added: 20 });
    const spent = await downloadsThisMonth(ctx, source.id);
    const reused = await runSync(ctx, sync.id, { dryRun: true, useLastSnapshot: true });
    expect(await downloadsThisMonth(ctx, source.id)).toBe(spent);
    expect(reused).toMatchObject({ status: 'dry_run', members: 20, added: 0, removed: 0 });
    expect(reused.sample).toMatchObject({ download: { spent: 0, snapshot_from: expect.any(String) } });
    expect(runSummary(reused)).toMatch(/used the last download .*no download spent/);
  });
});

/** Discovers the source's cohorts the way `cohort list --source ID --refresh` does. */
async function knownCohort(
  ctx: import('../../src/store').Context,
  sourceId: string,
  cohortId: string,
): Promise<string> {
  const { refreshSourceCohorts } = await import('../../src/connectors/amplitude/cohorts');
  const list = await refreshSourceCohorts(ctx, sourceId);
  if (!list.some((c) => c.id === cohortId)) throw new Error(`cohort ${cohortId} not listed`);
  return cohortId;
}
