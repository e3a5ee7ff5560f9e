import { z } from 'zod';
import { parseWith } from '../errors';
import type { JobQueue } from '../jobs/port';
import { enqueueDelivery } from '../jobs/tasks';
import type { Context } from '../store';
import {
  EXPORT_FORMATS,
  type ExportFormat,
  exportRunRecords,
  MAX_PAGE,
  pageRunRecords,
  RECORD_OUTCOMES,
  type RecordOutcome,
  type RecordPage,
} from '../sync/record-reads';
import { approveRun, type RunProgress, rejectRun, retryFailedRun } from '../sync/run';
import { countFailedUsers, getRunView, listRuns as listRunRows, type RunView } from '../sync/runs';
import { getSync } from '../sync/syncs';

/**
 * Runs as a user sees them: list, show, records (a page, or the whole export), and the decisions
 * a person takes on one: approve or reject a held run, retry a finished run's failed users. Every
 * shell calls these. With a job queue, deliveries are the destination's queue's (one deliverer
 * per OneSignal app); without one they happen inline, in the caller's process.
 */

export type { RunView };

const RUN_STATUSES = ['running', 'completed', 'failed', 'held', 'rejected', 'dry_run'] as const;
const count = z.number().int();

export const runViewSchema = z
  .object({
    id: z.string(),
    sync_id: z.string(),
    status: z.enum(RUN_STATUSES),
    trigger: z.string().describe('manual, schedule, webhook or once'),
    dry_run: z.boolean(),
    members: count,
    added: count,
    removed: count,
    retried: count.describe('earlier not_found/failed users tried again'),
    unchanged: count,
    skipped_anonymous: count,
    delivered: count,
    not_found: count,
    failed: count,
    pending: count,
    requests: count,
    error: z.string().nullable(),
    hold_reason: z.string().nullable(),
    sample: z.unknown().describe('samples of adds and removes (dry and held runs), or the webhook messages'),
    started_at: count.describe('epoch ms'),
    finished_at: count.nullable(),
  })
  .describe('A run. Counters add up: added + removed + retried = delivered + not_found + failed + pending.');

const intString = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

export const runListSchema = z.object({
  sync: z
    .string()
    .trim()
    .min(1, 'must not be blank')
    .max(200, 'at most 200 characters')
    .optional()
    .describe('only runs of this sync'),
  limit: intString(1, 500).default(50),
  before: intString(0, Number.MAX_SAFE_INTEGER).optional().describe('cursor: runs started before this epoch-ms time'),
});
export type RunListInput = z.input<typeof runListSchema>;

/** Runs newest first; of one sync (which must exist) or of all. */
export async function listRuns(ctx: Context, input: RunListInput = {}): Promise<RunView[]> {
  const q = parseWith(runListSchema, input);
  if (q.sync !== undefined) await getSync(ctx, q.sync);
  return listRunRows(ctx, {
    ...(q.sync !== undefined ? { syncId: q.sync } : {}),
    limit: q.limit,
    ...(q.before !== undefined ? { before: q.before } : {}),
  });
}

/** One run; the counters of a run still delivering are read live from the ledger. */
export const showRun = (ctx: Context, runId: string): Promise<RunView> => getRunView(ctx, runId);

export { EXPORT_FORMATS, type ExportFormat, MAX_PAGE, RECORD_OUTCOMES, type RecordOutcome, type RecordPage };

/** A page of a run's records in user order (settled ones, then pending ones). */
export const runRecords = (
  ctx: Context,
  runId: string,
  q: { outcome?: RecordOutcome; limit: number; cursor?: string },
): Promise<RecordPage> => pageRunRecords(ctx, runId, q);

/** Every record of a run as CSV or NDJSON text, chunk by chunk; an unknown run is refused before the first chunk. */
export async function exportRecords(
  ctx: Context,
  runId: string,
  format: ExportFormat,
  opts: { outcome?: RecordOutcome } = {},
): Promise<AsyncGenerator<string>> {
  await getRunView(ctx, runId);
  return exportRunRecords(ctx, runId, format, opts);
}

/** How a decision's delivery happens: the job queue's, or inline (with a progress callback for a terminal). */
export interface DeliverBy {
  jobs?: JobQueue | undefined;
  onProgress?: (p: RunProgress) => void;
}

async function enqueueFor(ctx: Context, jobs: JobQueue, view: RunView): Promise<void> {
  const sync = await getSync(ctx, view.sync_id);
  await enqueueDelivery(ctx, jobs, sync.destination_id);
}

/** Applies a held run's removals (a person decided, the guard is not asked again) and delivers them. */
export async function approve(ctx: Context, runId: string, by: DeliverBy = {}): Promise<RunView> {
  if (!by.jobs)
    return approveRun(ctx, runId, { deliver: 'inline', ...(by.onProgress ? { onProgress: by.onProgress } : {}) });
  const view = await approveRun(ctx, runId, { deliver: 'enqueue' });
  await enqueueFor(ctx, by.jobs, view);
  return view;
}

/** Discards a held run: the ledger and OneSignal stay as they were, nothing is pending. */
export const reject = (ctx: Context, runId: string): Promise<RunView> => rejectRun(ctx, runId);

export const runRetrySchema = z.object({
  requeued: count.describe('failed users of the run that are pending again'),
  run: runViewSchema,
});
export type RunRetry = z.infer<typeof runRetrySchema>;

/**
 * Retries a finished run's users whose delivery failed for good: they are pending again and
 * delivered, by the job queue when there is one (the run stays running until that delivery
 * settles them), inline otherwise. Refused (409) while the run is unfinished, when it has no
 * failed users, or while its sync or destination is paused.
 */
export async function retryFailed(ctx: Context, runId: string, by: DeliverBy = {}): Promise<RunRetry> {
  if (!by.jobs)
    return retryFailedRun(ctx, runId, { deliver: 'inline', ...(by.onProgress ? { onProgress: by.onProgress } : {}) });
  const r = await retryFailedRun(ctx, runId, { deliver: 'enqueue' });
  await enqueueFor(ctx, by.jobs, r.run);
  return r;
}

/** The failed users a retry would re-queue (the UI offers a retry only when there are some). */
export const countRetryable = (ctx: Context, runId: string): Promise<number> => countFailedUsers(ctx, runId);
