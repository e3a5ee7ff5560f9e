import { isAmpError } from '../../errors';
import { JOB_KEYS, TASKS } from '../../jobs/port';
import { runSync } from '../../sync/run';
import type { RunView } from '../../sync/runs';
import { log } from '../../telemetry/logger';
import type { AdminDeps } from './auth';
import { parseOr400 } from './errors';
import { type RunRead, readRun, readSync } from './queries';
import { runSyncBody } from './schemas';

/**
 * The UI's "Run now" (the API's run route is app/syncs.ts startRun): validates its input, then
 * hands the work to the sync engine or the job queue. Everything else that was here goes
 * through src/app.
 */

// How long a run request waits for an inline run before answering 202 with the run in progress.
const INLINE_ANSWER_MS = 5_000;
const RUN_ID_WAIT_MS = 2_000;

export interface RunRequestResult {
  status: 200 | 202;
  body: { queued: boolean; sync_id: string; run: RunView | RunRead | null; message: string };
}

/**
 * Starts a run of a sync. With a job queue the run is enqueued (`sync.run`, one pending job per
 * sync, so a double click does not queue two runs); without one it runs in this process, and the
 * request waits a few seconds for it, answering 202 with the run as far as it got otherwise.
 * Dry runs write nothing, so they always run inline and answer with their report.
 */
export async function runSyncAction(deps: AdminDeps, syncId: string, body: unknown): Promise<RunRequestResult> {
  const { dry_run } = parseOr400(runSyncBody, body, 'run request');
  const { ctx } = deps;
  await readSync(ctx, syncId);
  if (deps.jobs && !dry_run) {
    await deps.jobs.add(TASKS.syncRun, { syncId, trigger: 'manual' }, { jobKey: JOB_KEYS.syncRun(syncId) });
    return { status: 202, body: { queued: true, sync_id: syncId, run: null, message: 'run queued' } };
  }

  const startedAt = Date.now();
  const running = runSync(ctx, syncId, { dryRun: dry_run, trigger: 'manual', deliver: 'inline' });
  // The run keeps going after we answer; its failure is recorded on the run row by the engine.
  running.catch((e: unknown) => {
    if (!isAmpError(e) || e.kind === 'internal') log.error({ err: e, syncId }, 'inline sync run failed');
  });
  const done = await Promise.race([
    running.then((view) => ({ view })),
    new Promise<null>((r) => setTimeout(() => r(null), dry_run ? 60_000 : INLINE_ANSWER_MS).unref()),
  ]);
  if (done) return { status: 200, body: { queued: false, sync_id: syncId, run: done.view, message: 'run finished' } };

  // Still running: find the run row it created, polling briefly (the engine inserts it first).
  const deadline = Date.now() + RUN_ID_WAIT_MS;
  for (;;) {
    const row = await ctx.store.db
      .selectFrom('runs')
      .select('id')
      .where('sync_id', '=', syncId)
      .where('started_at', '>=', startedAt - 1000)
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (row || Date.now() > deadline) {
      return {
        status: 202,
        body: {
          queued: false,
          sync_id: syncId,
          run: row ? await readRun(ctx, row.id) : null,
          message: 'run in progress',
        },
      };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
