import type { Insertable, Selectable } from 'kysely';
import { z } from 'zod';
import { assertCadenceFitsBudget } from '../connectors/amplitude/budget';
import { clientForDestination, type DestinationRow, getDestination } from '../connectors/onesignal/destinations';
import { syncTags, TAG_VALUE_KINDS } from '../connectors/onesignal/sync-tags';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import type { SyncsTable } from '../store/schema';
import { CADENCES } from './cadence';
import { deliverDestination } from './deliver';
import { deleteRunsOfSync } from './run-record';

export const cadenceSchema = z.enum(CADENCES, { message: `cadence must be one of ${CADENCES.join(', ')}` });

/** How a member's tag value is written: "1", or the Unix time the user entered the cohort. */
export const tagValueSchema = z.enum(TAG_VALUE_KINDS, {
  message: `tag value must be one of ${TAG_VALUE_KINDS.join(', ')}`,
});

export const DEFAULT_GUARD_THRESHOLD = 0.5;

export type SyncRow = Selectable<SyncsTable>;

export interface SyncView {
  id: string;
  cohort_id: string;
  destination_id: string;
  cadence: string;
  tag_key: string;
  /** 'presence' ("1") or 'entered_at' (the Unix time the user entered the cohort). */
  tag_value: string;
  external_id_property: string;
  segment_id: string | null;
  segment_error: string | null;
  guard_threshold: number;
  status: string;
  next_run_at: number | null;
  last_run_id: string | null;
  created_at: number;
}

export function syncView(r: SyncRow): SyncView {
  return {
    id: r.id,
    cohort_id: r.cohort_id,
    destination_id: r.destination_id,
    cadence: r.cadence,
    tag_key: r.tag_key,
    tag_value: r.tag_value,
    external_id_property: r.external_id_property,
    segment_id: r.segment_id,
    segment_error: r.segment_error,
    guard_threshold: Number(r.guard_threshold),
    status: r.status,
    next_run_at: r.next_run_at === null ? null : Number(r.next_run_at),
    last_run_id: r.last_run_id,
    created_at: Number(r.created_at),
  };
}

/**
 * Syncs with the names of their cohort and destination (null if either row is gone): the base of
 * every listing that shows a sync by name; callers select their own columns beside these.
 */
export function selectNamedSyncs(ctx: Context) {
  return ctx.store.db
    .selectFrom('syncs')
    .leftJoin('cohorts', 'cohorts.id', 'syncs.cohort_id')
    .leftJoin('destinations', 'destinations.id', 'syncs.destination_id')
    .select(['cohorts.name as cohort_name', 'destinations.name as destination_name']);
}

export async function getSync(ctx: Context, id: string): Promise<SyncRow> {
  const row = await ctx.store.db.selectFrom('syncs').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `sync ${id} not found; list syncs with \`ampsignal sync list\``);
  return row;
}

export async function listSyncs(
  ctx: Context,
  opts: { cohortId?: string; destinationId?: string } = {},
): Promise<SyncRow[]> {
  let q = ctx.store.db.selectFrom('syncs').selectAll().orderBy('created_at').orderBy('id');
  if (opts.cohortId) q = q.where('cohort_id', '=', opts.cohortId);
  if (opts.destinationId) q = q.where('destination_id', '=', opts.destinationId);
  return q.execute();
}

export interface CreateSyncInput {
  cohortId: string;
  destinationId: string;
  cadence?: string;
  guardThreshold?: number;
  tagValue?: string;
  /** The segment: an existing one to reuse (its id), or a name for the new one (default: the cohort's). */
  segment?: { reuseId?: string; name?: string };
}

/**
 * Creates a sync (cohort × destination). The OneSignal segment (name = cohort name, its members
 * by the tag: = "1", or exists for entry-time values) is created best-effort: a failure is
 * recorded in segment_error, the sync stands.
 */
export async function createSync(ctx: Context, input: CreateSyncInput): Promise<SyncRow> {
  const settings = parseSyncSettings(input);
  const cohort = await ctx.store.db
    .selectFrom('cohorts')
    .selectAll()
    .where('id', '=', input.cohortId)
    .executeTakeFirst();
  if (!cohort)
    throw new AmpError('not_found', `cohort ${input.cohortId} not found; list cohorts with \`ampsignal cohort list\``);
  const dest = await getDestination(ctx, input.destinationId);
  if (cohort.source_id) await assertCadenceFitsBudget(ctx, cohort.source_id, settings.cadence);
  await refuseDuplicate(ctx, cohort.id, dest.id);
  const now = Date.now();
  const row: Insertable<SyncsTable> = {
    id: newId('syn'),
    cohort_id: cohort.id,
    destination_id: dest.id,
    cadence: settings.cadence,
    tag_key: syncTags.tagKey(dest.tag_key_template, cohort),
    tag_value: settings.tagValue,
    external_id_property: dest.external_id_property,
    segment_id: null,
    segment_error: null,
    guard_threshold: settings.threshold,
    status: 'active',
    // Scheduled cadences are due at once; the scheduler advances next_run_at after each run.
    next_run_at: settings.cadence === 'manual' ? null : now,
    last_run_id: null,
    created_at: now,
  };
  try {
    await ctx.store.db.insertInto('syncs').values(row).execute();
  } catch (e) {
    // Two concurrent creates: the unique (cohort, destination) constraint decides.
    await refuseDuplicate(ctx, cohort.id, dest.id);
    throw toAmpError(e);
  }
  await attachSegment(ctx, {
    row,
    dest,
    segmentName: input.segment?.name ?? cohort.name,
    reuseId: input.segment?.reuseId,
  });
  return getSync(ctx, row.id);
}

function parseSyncSettings(input: CreateSyncInput) {
  const cadence = cadenceSchema.safeParse(input.cadence ?? 'manual');
  if (!cadence.success)
    throw new AmpError('invalid_input', `cadence must be one of ${CADENCES.join(', ')} (got "${input.cadence}")`);
  const tagValue = tagValueSchema.safeParse(input.tagValue ?? 'presence');
  if (!tagValue.success)
    throw new AmpError(
      'invalid_input',
      `tag value must be one of ${TAG_VALUE_KINDS.join(', ')} (got "${input.tagValue}")`,
    );
  const threshold = input.guardThreshold ?? DEFAULT_GUARD_THRESHOLD;
  if (!(threshold > 0 && threshold <= 1))
    throw new AmpError('invalid_input', 'guard threshold must be a share in (0, 1], e.g. 0.5');
  return { cadence: cadence.data, tagValue: tagValue.data, threshold };
}

async function refuseDuplicate(ctx: Context, cohortId: string, destinationId: string): Promise<void> {
  const dup = await ctx.store.db
    .selectFrom('syncs')
    .select('id')
    .where('cohort_id', '=', cohortId)
    .where('destination_id', '=', destinationId)
    .executeTakeFirst();
  if (dup)
    throw new AmpError('conflict', `cohort ${cohortId} already syncs to destination ${destinationId} (sync ${dup.id})`);
}

/** Gives the sync its segment: the one to reuse, or a new one at OneSignal; a failure is kept in segment_error. */
async function attachSegment(
  ctx: Context,
  s: { row: Insertable<SyncsTable>; dest: DestinationRow; segmentName: string; reuseId: string | undefined },
): Promise<void> {
  const db = ctx.store.db;
  try {
    const filter = syncTags.segmentFilter(s.row.tag_key, syncTags.valueKind(s.row.tag_value ?? 'presence'));
    const seg = s.reuseId
      ? { id: s.reuseId }
      : await clientForDestination(ctx, s.dest).createSegment(s.segmentName, filter);
    await db.updateTable('syncs').set({ segment_id: seg.id }).where('id', '=', s.row.id).execute();
  } catch (e) {
    await db
      .updateTable('syncs')
      .set({ segment_error: toAmpError(e).message })
      .where('id', '=', s.row.id)
      .execute();
  }
}

/**
 * Deletes a sync: every row becomes desired=0 (tags removed at OneSignal), those are delivered,
 * then the rows, runs and the sync go. If some removals cannot be delivered the sync stays in
 * status 'deleting' with its rows, so nothing is forgotten; run the delete again to finish.
 * `removed` counts only users whose tag OneSignal had confirmed: a user never found there
 * (not_found) or never delivered to had no tag to remove.
 */
export async function deleteSync(
  ctx: Context,
  id: string,
): Promise<{ id: string; removed: number; deleted: boolean; pending: number }> {
  const db = ctx.store.db;
  const sync = await getSync(ctx, id);
  const now = Date.now();
  const tagged = await db.transaction().execute(async (trx) => {
    await trx.updateTable('syncs').set({ status: 'deleting', next_run_at: null }).where('id', '=', id).execute();
    const confirmed = await trx
      .selectFrom('ledger')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('sync_id', '=', id)
      .where('confirmed', '=', 1)
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('ledger')
      .set({
        desired: 0,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        run_id: null,
        updated_at: now,
      })
      .where('sync_id', '=', id)
      .where((eb) => eb.or([eb('desired', '=', 1), eb('confirmed', '=', 1)]))
      .execute();
    return Number(confirmed.n);
  });
  await deliverDestination(ctx, sync.destination_id);
  const left = await db
    .selectFrom('ledger')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('sync_id', '=', id)
    .where('confirmed', '=', 1)
    .executeTakeFirstOrThrow();
  const pending = Number(left.n);
  if (pending > 0) return { id, removed: tagged - pending, deleted: false, pending };
  await forgetSyncs(ctx, [id]);
  return { id, removed: tagged, deleted: true, pending: 0 };
}

/** Drops syncs with their ledger rows, staging and runs, leaving OneSignal as it is. */
export async function forgetSyncs(ctx: Context, ids: string[]): Promise<void> {
  if (!ids.length) return;
  await ctx.store.db.transaction().execute(async (trx) => {
    for (const id of ids) {
      await trx.deleteFrom('ledger').where('sync_id', '=', id).execute();
      await trx.deleteFrom('verifications').where('sync_id', '=', id).execute();
      const runIds = trx.selectFrom('runs').select('id').where('sync_id', '=', id);
      await trx.deleteFrom('staging').where('run_id', 'in', runIds).execute();
      await deleteRunsOfSync(trx, id);
      await trx.deleteFrom('syncs').where('id', '=', id).execute();
    }
  });
}
