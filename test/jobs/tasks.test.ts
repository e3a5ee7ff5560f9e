import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { addDestination } from '../../src/app/destinations';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { createJobQueue } from '../../src/jobs';
import type { JobQueue } from '../../src/jobs/port';
import { TASKS } from '../../src/jobs/port';
import { startWorker } from '../../src/jobs/runtime';
import { buildTasks, enqueueDelivery } from '../../src/jobs/tasks';
import { importCohortFile } from '../../src/sync/cohorts';
import { openRun } from '../../src/sync/run-record';
import { createSync } from '../../src/sync/syncs';
import { describeEachDialect } from '../helpers/db';
import { seedSyncWithParts } from '../helpers/seed';
import { waitFor } from './helpers';

const APP = '00000000-0000-4000-8000-0000000000aa';

// The wiring from the scheduler to OneSignal, through whichever queue the dialect uses.
describeEachDialect('job tasks end to end', (db) => {
  let emu: OneSignalEmulator;
  let jobs: JobQueue | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-tasks-'));
  beforeAll(async () => {
    emu = await startOneSignalEmulator({
      apps: [{ appId: APP, apiKey: 'k' }],
      users: { mode: 'seeded', ids: ['u1', 'u2', 'u3', 'u4'] },
    });
  });
  afterAll(async () => {
    await jobs?.stop();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a due "once" sync is pulled by the start tick, delivered in its app queue, and not scheduled again', async () => {
    const { ctx } = db();
    const dest = await addDestination(ctx, { name: 'tasks app', app_id: APP, api_key: 'k', api_url: emu.url });
    const file = join(dir, 'members.csv');
    writeFileSync(file, 'u1\nu2\nu3\n');
    const cohort = await importCohortFile(ctx, { file, name: 'Tasks cohort' });
    const sync = await createSync(ctx, { cohortId: cohort.cohort_id, destinationId: dest.id, cadence: 'once' });

    jobs = createJobQueue(ctx, { sqlite: { pollMs: 50 }, graphile: { pollMs: 200 } });
    await startWorker(ctx, { concurrency: 2, jobs });

    await waitFor(() => ['u1', 'u2', 'u3'].every((u) => emu.state.getUser(u, APP)?.[sync.tag_key] === '1'), {
      what: 'tags at OneSignal',
      timeoutMs: 30_000,
    });
    expect(emu.state.getUser('u4', APP)).toEqual({});
    const run = await waitFor(
      async () =>
        (await ctx.store.db
          .selectFrom('runs')
          .selectAll()
          .where('sync_id', '=', sync.id)
          .where('status', '=', 'completed')
          .executeTakeFirst()) ?? null,
      { what: 'run to complete' },
    );
    expect(run.trigger).toBe('schedule');
    expect(run.added).toBe(3);
    expect(run.delivered).toBe(3);
    const after = await ctx.store.db
      .selectFrom('syncs')
      .select('next_run_at')
      .where('id', '=', sync.id)
      .executeTakeFirstOrThrow();
    expect(after.next_run_at).toBeNull();

    // A removal queued by hand goes through the same delivery path.
    await ctx.store.db
      .updateTable('ledger')
      .set({ desired: 0, outcome: null, run_id: null })
      .where('sync_id', '=', sync.id)
      .where('external_id', '=', 'u2')
      .execute();
    await enqueueDelivery(ctx, jobs, dest.id);
    await waitFor(() => emu.state.getUser('u2', APP)?.[sync.tag_key] === undefined, { what: 'tag removal' });
    await waitFor(
      async () => (await jobs!.list()).filter((j) => j.task !== 'schedule.tick' && j.state !== 'failed').length === 0,
      {
        what: 'queue to drain',
      },
    );
    expect((await jobs.list()).filter((j) => j.state === 'failed')).toEqual([]);
  });
  it('a scheduled run of a sync with a run already at work is skipped, not failed', async () => {
    const { ctx } = db();
    await seedSyncWithParts(ctx, 'syn_busy');
    const atWork = await openRun(ctx, { syncId: 'syn_busy', trigger: 'manual', dryRun: false });
    const queue = createJobQueue(ctx);
    const run = buildTasks(ctx, queue)[TASKS.syncRun]!;
    await run({ syncId: 'syn_busy' }, { signal: new AbortController().signal, workerId: 'w', jobId: '1' });
    const runs = await ctx.store.db.selectFrom('runs').select('id').where('sync_id', '=', 'syn_busy').execute();
    expect(runs.map((r) => r.id)).toEqual([atWork.runId]);
    await queue.stop();
  });
});
