import { z } from 'zod';
import { refreshSourceCohorts } from '../connectors/amplitude/cohorts';
import { AmpError } from '../errors';
import type { Context } from '../store';
import { type CohortView, importCohortFile, listCohorts } from '../sync/cohorts';

/**
 * Cohorts as a user sees them: import a file, list, refresh a source's list from Amplitude,
 * delete (refused while a sync uses the cohort). Every shell calls these.
 */

export type { CohortView };
export { importCohortFile as importCohort, listCohorts };

export const cohortDeletionSchema = z.object({ id: z.string(), deleted: z.boolean(), members: z.number().int() });
export type CohortDeletion = z.infer<typeof cohortDeletionSchema>;

/** Refreshes a source's cohort list from Amplitude (free: listing is not a download). */
export const refreshCohorts = (ctx: Context, sourceId: string) => refreshSourceCohorts(ctx, sourceId);

/** Deletes a cohort with its stored members; refused while syncs use it, naming them. */
export async function deleteCohort(ctx: Context, id: string): Promise<CohortDeletion> {
  const db = ctx.store.db;
  const cohort = await db.selectFrom('cohorts').select(['id', 'size']).where('id', '=', id).executeTakeFirst();
  if (!cohort) throw new AmpError('not_found', `cohort ${id} not found; list cohorts with \`ampsignal cohort list\``);
  const syncs = await db.selectFrom('syncs').select('id').where('cohort_id', '=', id).orderBy('created_at').execute();
  if (syncs.length)
    throw new AmpError(
      'conflict',
      `cohort ${id} is synced by ${syncs.map((s) => s.id).join(', ')}; delete the sync(s) first (\`sync delete\` removes their tags)`,
      { details: { existing_id: syncs[0]!.id, sync_ids: syncs.map((s) => s.id) } },
    );
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('cohort_members').where('cohort_id', '=', id).execute();
    await trx.deleteFrom('cohorts').where('id', '=', id).execute();
  });
  return { id, deleted: true, members: Number(cohort.size ?? 0) };
}
