import { z } from 'zod';
import { assertCadenceFitsBudget } from '../connectors/amplitude/budget';
import { MAX_SEGMENTS_PAGE } from '../connectors/onesignal/constants';
import { clientForDestination, type DestinationRow, getDestination } from '../connectors/onesignal/destinations';
import { TAG_VALUE_KINDS } from '../connectors/onesignal/sync-tags';
import { renderTagKey } from '../connectors/onesignal/tag-keys';
import { AmpError, parseWith, toAmpError } from '../errors';
import { JOB_KEYS, type JobQueue, TASKS } from '../jobs/port';
import { enqueueDelivery } from '../jobs/tasks';
import type { Context } from '../store';
import { CADENCES } from '../sync/cadence';
import { runSync } from '../sync/run';
import { getRunView, type RunView } from '../sync/runs';
import { createSync, DEFAULT_GUARD_THRESHOLD, deleteSync, forgetSyncs, getSync, selectNamedSyncs } from '../sync/syncs';
import { log } from '../telemetry/logger';
import { runViewSchema } from './runs';

/**
 * Syncs (cohort × destination) as a user sees them: create, list, show, update, pause, resume,
 * run (or dry run), delete. A run's own operations (approve, reject, retry) are runs.ts'. Every
 * shell calls these.
 */

const cadence = z.enum(CADENCES, { error: `must be one of ${CADENCES.join(', ')}` });
const share = z
  .number({ error: 'must be a number' })
  .gt(0, 'must be a share above 0, e.g. 0.5')
  .max(1, 'must be a share of at most 1');
const id = z.string().trim().min(1, 'is required').max(200, 'at most 200 characters');

export const syncInputSchema = z.object({
  cohort_id: id,
  destination_id: id,
  cadence: cadence.default('manual'),
  guard_threshold: share.default(DEFAULT_GUARD_THRESHOLD),
  /** presence: the tag is "1"; entered_at: the Unix time the user entered the cohort (time_elapsed segment filters). */
  tag_value: z.enum(TAG_VALUE_KINDS, { error: `must be one of ${TAG_VALUE_KINDS.join(', ')}` }).default('presence'),
  /** A OneSignal segment of that name already exists: reuse it (its id)… */
  reuse_segment_id: id.optional(),
  /** …or give ours another name (default: the cohort's name). */
  segment_name: z.string().trim().min(1, 'must not be empty').max(128, 'at most 128 characters').optional(),
});
export type SyncInput = z.input<typeof syncInputSchema>;

export const syncUpdateSchema = z.strictObject(
  { cadence: cadence.optional(), guard_threshold: share.optional() },
  { error: (i) => (i.code === 'unrecognized_keys' ? `cannot be changed: ${i.keys.join(', ')}` : undefined) },
);

export const syncViewSchema = z.object({
  id: z.string(),
  cohort_id: z.string(),
  cohort_name: z.string().nullable(),
  destination_id: z.string(),
  destination_name: z.string().nullable(),
  cadence: z.string(),
  tag_key: z.string(),
  tag_value: z.enum(TAG_VALUE_KINDS),
  external_id_property: z.string(),
  segment_id: z.string().nullable(),
  segment_error: z.string().nullable(),
  guard_threshold: z.number(),
  status: z.enum(['active', 'paused', 'deleting']),
  next_run_at: z.number().int().nullable(),
  created_at: z.number().int(),
  last_run: z
    .object({
      id: z.string(),
      status: z.string(),
      started_at: z.number().int(),
      finished_at: z.number().int().nullable(),
    })
    .nullable(),
});
export type SyncView = z.infer<typeof syncViewSchema>;

async function querySyncs(ctx: Context, syncId?: string): Promise<SyncView[]> {
  let q = selectNamedSyncs(ctx)
    .select([
      'syncs.id',
      'syncs.cohort_id',
      'syncs.destination_id',
      'syncs.cadence',
      'syncs.tag_key',
      'syncs.tag_value',
      'syncs.external_id_property',
      'syncs.segment_id',
      'syncs.segment_error',
      'syncs.guard_threshold',
      'syncs.status',
      'syncs.next_run_at',
      'syncs.created_at',
      // The newest run by start time, so a run still in progress shows.
      (eb) =>
        eb
          .selectFrom('runs')
          .select('runs.id')
          .whereRef('runs.sync_id', '=', 'syncs.id')
          .orderBy('runs.started_at', 'desc')
          .orderBy('runs.id', 'desc')
          .limit(1)
          .as('last_run_id'),
    ])
    .orderBy('syncs.created_at')
    .orderBy('syncs.id');
  if (syncId !== undefined) q = q.where('syncs.id', '=', syncId);
  const rows = await q.execute();
  const runIds = rows.map((r) => r.last_run_id).filter((x): x is string => typeof x === 'string');
  const runs = runIds.length
    ? await ctx.store.db
        .selectFrom('runs')
        .select(['id', 'status', 'started_at', 'finished_at'])
        .where('id', 'in', runIds)
        .execute()
    : [];
  const runById = new Map(runs.map((r) => [r.id, r]));
  return rows.map(({ last_run_id, ...r }) => {
    const run = last_run_id ? runById.get(last_run_id) : undefined;
    return {
      ...r,
      status: r.status as SyncView['status'],
      tag_value: r.tag_value as SyncView['tag_value'],
      guard_threshold: Number(r.guard_threshold),
      next_run_at: r.next_run_at === null ? null : Number(r.next_run_at),
      created_at: Number(r.created_at),
      last_run: run
        ? {
            id: run.id,
            status: run.status,
            started_at: Number(run.started_at),
            finished_at: run.finished_at === null ? null : Number(run.finished_at),
          }
        : null,
    };
  });
}

export const listSyncs = (ctx: Context): Promise<SyncView[]> => querySyncs(ctx);

export async function showSync(ctx: Context, syncId: string): Promise<SyncView> {
  const [row] = await querySyncs(ctx, syncId);
  if (!row) throw new AmpError('not_found', `sync ${syncId} not found; list syncs with \`ampsignal sync list\``);
  return row;
}

// ---- conflicts ----

/** Two cohorts whose tag keys render the same on one app would write each other's tag. */
async function refuseTagKeyCollision(ctx: Context, dest: DestinationRow, cohort: { id: string; name: string }) {
  const tagKey = renderTagKey(dest.tag_key_template, cohort);
  const taken = await ctx.store.db
    .selectFrom('syncs')
    .select(['id', 'cohort_id'])
    .where('destination_id', '=', dest.id)
    .where('tag_key', '=', tagKey)
    .executeTakeFirst();
  if (taken)
    throw new AmpError(
      'conflict',
      `cohort ${cohort.id} would write the tag "${tagKey}" on OneSignal app ${dest.app_id}, which sync ${taken.id} (cohort ${taken.cohort_id}) already writes; use a tag key template with {cohort_id}`,
      { details: { existing_id: taken.id, field: 'cohort_id' } },
    );
}

/**
 * A segment name OneSignal already has would make the segment create fail with 409 after the
 * sync exists; refused up front with the segment's id, so the user reuses it or picks a name.
 * When the app cannot be listed (unreachable), the create goes ahead and records what failed.
 */
async function refuseTakenSegmentName(ctx: Context, dest: DestinationRow, name: string): Promise<void> {
  const client = clientForDestination(ctx, dest);
  let offset = 0;
  try {
    for (;;) {
      const page = await client.listSegments({ offset, limit: MAX_SEGMENTS_PAGE });
      const taken = page.segments.find((s) => s.name === name);
      if (taken)
        throw new AmpError(
          'conflict',
          `OneSignal app ${dest.app_id} already has a segment named "${name}" (segment ${taken.id}): reuse it (reuse_segment_id / --reuse-segment ${taken.id}) or name ours (segment_name / --segment-name)`,
          { details: { existing_id: taken.id, field: 'segment_name' } },
        );
      offset += page.segments.length;
      if (page.segments.length === 0 || offset >= page.total) return;
    }
  } catch (e) {
    if (e instanceof AmpError && e.code === 'conflict') throw e;
    log.warn({ err: toAmpError(e).message, destination: dest.id }, 'could not list segments before creating a sync');
  }
}

// ---- operations ----

/** Creates a sync and its OneSignal segment (name = the cohort's, filter tag = "1"). */
export async function addSync(ctx: Context, input: unknown): Promise<SyncView> {
  const v = parseWith(syncInputSchema, input ?? {});
  const cohort = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'name', 'source_id'])
    .where('id', '=', v.cohort_id)
    .executeTakeFirst();
  if (!cohort)
    throw new AmpError('not_found', `cohort ${v.cohort_id} not found; list cohorts with \`ampsignal cohort list\``);
  const dest = await getDestination(ctx, v.destination_id);
  const dup = await ctx.store.db
    .selectFrom('syncs')
    .select('id')
    .where('cohort_id', '=', cohort.id)
    .where('destination_id', '=', dest.id)
    .executeTakeFirst();
  if (dup)
    throw new AmpError('conflict', `cohort ${cohort.id} already syncs to destination ${dest.id} (sync ${dup.id})`, {
      details: { existing_id: dup.id },
    });
  await refuseTagKeyCollision(ctx, dest, cohort);
  if (!v.reuse_segment_id) await refuseTakenSegmentName(ctx, dest, v.segment_name ?? cohort.name);
  const row = await createSync(ctx, {
    cohortId: cohort.id,
    destinationId: dest.id,
    cadence: v.cadence,
    guardThreshold: v.guard_threshold,
    tagValue: v.tag_value,
    segment: {
      ...(v.reuse_segment_id ? { reuseId: v.reuse_segment_id } : {}),
      ...(v.segment_name ? { name: v.segment_name } : {}),
    },
  });
  return showSync(ctx, row.id);
}

/** Changes a sync's cadence (checked against the source's download budget) or guard threshold. */
export async function updateSync(ctx: Context, syncId: string, patch: unknown): Promise<SyncView> {
  const p = parseWith(syncUpdateSchema, patch ?? {});
  const sync = await getSync(ctx, syncId);
  const set: { cadence?: string; next_run_at?: number | null; guard_threshold?: number } = {};
  if (p.cadence !== undefined && p.cadence !== sync.cadence) {
    const cohort = await ctx.store.db
      .selectFrom('cohorts')
      .select('source_id')
      .where('id', '=', sync.cohort_id)
      .executeTakeFirst();
    if (cohort?.source_id) await assertCadenceFitsBudget(ctx, cohort.source_id, p.cadence, { exceptSyncId: syncId });
    set.cadence = p.cadence;
    set.next_run_at = p.cadence === 'manual' ? null : Date.now();
  }
  if (p.guard_threshold !== undefined) set.guard_threshold = p.guard_threshold;
  if (Object.keys(set).length) await ctx.store.db.updateTable('syncs').set(set).where('id', '=', syncId).execute();
  return showSync(ctx, syncId);
}

async function setStatus(ctx: Context, syncId: string, from: string, to: string, next: number | null) {
  const sync = await getSync(ctx, syncId);
  if (sync.status !== from && sync.status !== to)
    throw new AmpError(
      'run_state',
      `sync ${syncId} is ${sync.status}; only an ${from} sync can be ${to === 'paused' ? 'paused' : 'resumed'}`,
    );
  await ctx.store.db.updateTable('syncs').set({ status: to, next_run_at: next }).where('id', '=', syncId).execute();
  return showSync(ctx, syncId);
}

/** Stops scheduled runs (and refuses manual ones) until resumed; tags stay as they are. */
export const pauseSync = (ctx: Context, syncId: string) => setStatus(ctx, syncId, 'active', 'paused', null);

export async function resumeSync(ctx: Context, syncId: string): Promise<SyncView> {
  const sync = await getSync(ctx, syncId);
  return setStatus(ctx, syncId, 'paused', 'active', sync.cadence === 'manual' ? null : Date.now());
}

export const runStartSchema = z.object({
  run_id: z.string().describe('poll GET /runs/{run_id} until it is no longer running'),
  run: runViewSchema.describe('the run as far as it got'),
  finished: z.boolean(),
});
export type RunStart = { run_id: string; run: RunView; finished: boolean };

// How long a run request waits for the run to finish before answering with it in progress.
const ANSWER_WITHIN_MS = 5_000;

/**
 * Starts a run and answers with its id once the run row exists (at once), with the run as far as
 * it got within a few seconds. The pull and diff run in this process; with a job queue the
 * delivery is the app's queue's (one deliverer per OneSignal app). Dry runs write nothing and
 * are waited for: their report is the answer.
 */
export async function startRun(
  ctx: Context,
  syncId: string,
  opts: { dryRun?: boolean; jobs?: JobQueue; waitMs?: number } = {},
): Promise<RunStart> {
  const sync = await getSync(ctx, syncId);
  const before = Date.now();
  const running = runSync(ctx, syncId, {
    dryRun: opts.dryRun === true,
    trigger: 'manual',
    deliver: opts.jobs ? 'enqueue' : 'inline',
  }).then(async (view) => {
    // An applied run stays 'running' until its delivery settles it, and rows of the destination
    // may be pending whatever the run's outcome: the app's queue delivers (an idle pass is cheap).
    if (opts.jobs && !opts.dryRun) await enqueueDelivery(ctx, opts.jobs, sync.destination_id);
    return view;
  });
  running.catch((e: unknown) => {
    // The caller hears a refusal (paused, a run already at work) in its answer; the log keeps errors.
    const err = toAmpError(e);
    if (err.kind !== 'usage') log.error({ err: err.message, syncId }, 'run failed to start');
  });
  const wait = opts.dryRun ? 120_000 : (opts.waitMs ?? ANSWER_WITHIN_MS);
  const done = await Promise.race([running, new Promise<null>((r) => setTimeout(() => r(null), wait).unref())]);
  if (done) return { run_id: done.id, run: done, finished: done.status !== 'running' };
  const row = await waitForRunRow(ctx, syncId, before, running);
  return { run_id: row, run: await getRunView(ctx, row), finished: false };
}

/** The run row runSync inserted first thing: polled briefly, since runSync returns only at its end. */
async function waitForRunRow(ctx: Context, syncId: string, since: number, running: Promise<RunView>): Promise<string> {
  let failed: unknown;
  running.catch((e: unknown) => {
    failed = e;
  });
  for (let i = 0; i < 400; i++) {
    if (failed) throw failed;
    const row = await ctx.store.db
      .selectFrom('runs')
      .select('id')
      .where('sync_id', '=', syncId)
      .where('started_at', '>=', since - 1000)
      .orderBy('started_at', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (row) return row.id;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new AmpError('internal', `the run of sync ${syncId} did not start`);
}

/** Runs a sync on the job queue (one pending run per sync), for callers that need no id. */
export async function enqueueRun(jobs: JobQueue, syncId: string): Promise<void> {
  await jobs.add(TASKS.syncRun, { syncId, trigger: 'manual' }, { jobKey: JOB_KEYS.syncRun(syncId) });
}

export const syncRemovalSchema = z.object({
  id: z.string(),
  /** false: some tag removals are still pending at OneSignal; the sync stays ('deleting') until they are delivered. */
  deleted: z.boolean(),
  /** Users whose tag OneSignal had confirmed and that were removed. */
  removed: z.number().int(),
  /** Confirmed tags whose removal is not delivered yet. */
  pending: z.number().int(),
  /** The segment deleted at OneSignal, if the sync had one. */
  segment_deleted: z.string().nullable(),
  /** Why the segment could not be deleted (the sync is gone all the same). */
  segment_error: z.string().nullable(),
});
export type SyncRemoval = z.infer<typeof syncRemovalSchema>;

/**
 * Deletes a sync the whole way: its tags are removed from the users OneSignal confirmed them on,
 * then its segment is deleted, then our records. Removals that cannot be delivered now keep the
 * sync (status 'deleting'); deleting again finishes it.
 */
export async function removeSync(ctx: Context, id: string): Promise<SyncRemoval> {
  const sync = await getSync(ctx, id);
  const r = await deleteSync(ctx, id);
  const removal: SyncRemoval = { ...r, segment_deleted: null, segment_error: null };
  if (!r.deleted || !sync.segment_id) return removal;
  try {
    const dest = await getDestination(ctx, sync.destination_id);
    await clientForDestination(ctx, dest).deleteSegment(sync.segment_id);
    removal.segment_deleted = sync.segment_id;
  } catch (e) {
    removal.segment_error = toAmpError(e).message;
  }
  return removal;
}

/** Drops syncs and their records without touching OneSignal (a destination deleted without removing its tags). */
export async function deleteSyncsLocally(ctx: Context, ids: string[]): Promise<void> {
  await forgetSyncs(ctx, ids);
}
