import { getConnector } from '../../connectors/catalog';
import {
  clientForDestination,
  createDestination,
  type DestinationView,
  destinationView,
  getDestination,
} from '../../connectors/onesignal/destinations';
import { AmpError, isAmpError, toAmpError } from '../../errors';
import { JOB_KEYS, TASKS } from '../../jobs/port';
import { enqueueDelivery } from '../../jobs/tasks';
import type { Context } from '../../store';
import { approveRun, rejectRun, runSync } from '../../sync/run';
import type { RunView } from '../../sync/runs';
import { createSync } from '../../sync/syncs';
import { log } from '../../telemetry/logger';
import type { AdminDeps } from './auth';
import { describeIssues, parseOr400 } from './errors';
import { type RunRead, readRun, readSync, type SyncRead } from './queries';
import { createSyncBody, runSyncBody } from './schemas';

/**
 * State-changing operations shared by the admin API and the UI. Each one validates its input,
 * then hands the work to the module that owns it (connector, sync engine, job queue); nothing
 * here writes tables directly, so the owners' invariants and transactions stay in one place.
 */

export async function createDestinationAction(ctx: Context, body: unknown): Promise<DestinationView> {
  return destinationView(await createDestination(ctx, (body ?? {}) as Record<string, unknown>));
}

export interface ConnectionTestResult {
  ok: boolean;
  /** When the test failed: credentials_refused, rate_limited or unreachable. */
  error?: ConnectionTestFailure;
  message: string;
}

export type ConnectionTestFailure = 'credentials_refused' | 'rate_limited' | 'unreachable';

/**
 * "Test connection" reports one of a few outcomes and never the answer itself: the URL is the
 * caller's to choose, so echoing what answered there (or telling a refused connection from a
 * timeout or from a stranger's HTTP answer) would turn the form into a probe of any host:port.
 * Only answers OneSignal gives about credentials and its rate limit get their own outcome.
 */
function testFailure(e: unknown, apiUrl: string): ConnectionTestResult {
  const err = toAmpError(e);
  if (err.code === 'vendor_auth')
    return {
      ok: false,
      error: 'credentials_refused',
      message: 'OneSignal refused the App ID or the App API key: check both under Settings > Keys & IDs',
    };
  if (err.code === 'rate_limited')
    return { ok: false, error: 'rate_limited', message: 'OneSignal is rate limiting this app: try again in a minute' };
  if (err.kind === 'internal') log.error({ err }, 'destination test failed');
  return {
    ok: false,
    error: 'unreachable',
    message: `no OneSignal answer at ${originOf(apiUrl)}: check the API base URL (OneSignal's is https://api.onesignal.com)`,
  };
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the API base URL';
  }
}

/** Tests a saved destination's app id and key against OneSignal. A refusal is a result, not an error. */
export async function testDestinationAction(ctx: Context, id: string): Promise<ConnectionTestResult> {
  const row = await getDestination(ctx, id);
  try {
    await clientForDestination(ctx, row).testConnection();
    return { ok: true, message: `connected to OneSignal app ${row.app_id}` };
  } catch (e) {
    return testFailure(e, row.api_url);
  }
}

/** Tests unsaved settings (the "Test connection" button on the new-destination form). */
export async function testSettingsAction(input: Record<string, unknown>): Promise<ConnectionTestResult> {
  const connector = getConnector('onesignal');
  const r = connector.settingsSchema.safeParse(input);
  if (!r.success) throw new AmpError('invalid_input', describeIssues(r.error));
  try {
    await connector.testAuthentication(r.data);
    return { ok: true, message: `connected to OneSignal app ${r.data.app_id}` };
  } catch (e) {
    return testFailure(e, r.data.api_url);
  }
}

export async function createSyncAction(ctx: Context, body: unknown): Promise<SyncRead> {
  const input = parseOr400(createSyncBody, body ?? {}, 'sync');
  const created = await createSync(ctx, {
    cohortId: input.cohort_id,
    destinationId: input.destination_id,
    cadence: input.cadence,
  });
  return readSync(ctx, (created as { id: string }).id);
}

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

export async function decideRunAction(
  deps: AdminDeps,
  runId: string,
  decision: 'approve' | 'reject',
): Promise<RunView> {
  const { ctx } = deps;
  if (decision === 'reject') return rejectRun(ctx, runId);
  if (!deps.jobs) return approveRun(ctx, runId, { deliver: 'inline' });
  // With workers running, delivery belongs to the app's job queue (one deliverer per app).
  const view = await approveRun(ctx, runId, { deliver: 'enqueue' });
  const sync = await readSync(ctx, view.sync_id);
  await enqueueDelivery(ctx, deps.jobs, sync.destination_id);
  return view;
}
