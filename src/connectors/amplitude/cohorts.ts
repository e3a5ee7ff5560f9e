import type { Context } from '../../store';
import { AmplitudeCohortsClient } from './cohorts-api';
import { getSource, sourceCredentials } from './sources';

/** A source's cohorts as `cohort list --source` prints them. */
export interface SourceCohortView {
  id: string;
  name: string;
  size: number | null;
  last_computed: number | null;
  origin: string;
  source_id: string;
}

/**
 * Fetches the project's cohort list from Amplitude (free: not a download) and records each
 * cohort under its Amplitude id, so `sync create --cohort <id>` takes the id shown in Amplitude.
 */
export async function refreshSourceCohorts(ctx: Context, sourceId: string): Promise<SourceCohortView[]> {
  const source = await getSource(ctx, sourceId);
  const client = new AmplitudeCohortsClient(sourceCredentials(ctx, source));
  const listed = (await client.listCohorts()).filter((c) => !c.archived);
  const db = ctx.store.db;
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    for (const c of listed) {
      const existing = await trx
        .selectFrom('cohorts')
        .select(['source_id', 'origin'])
        .where('id', '=', c.id)
        .executeTakeFirst();
      // Another source (the same project added twice) or a file cohort already owns this id:
      // leave it to its owner rather than moving its syncs under a different project.
      if (existing && existing.source_id !== source.id) continue;
      if (existing) {
        await trx
          .updateTable('cohorts')
          .set({ name: c.name, size: c.size, last_computed: c.last_computed, origin: 'amplitude', updated_at: now })
          .where('id', '=', c.id)
          .execute();
      } else {
        await trx
          .insertInto('cohorts')
          .values({
            id: c.id,
            source_id: source.id,
            name: c.name,
            origin: 'amplitude',
            size: c.size,
            last_computed: c.last_computed,
            created_at: now,
            updated_at: now,
          })
          .execute();
      }
    }
  });
  return storedSourceCohorts(ctx, source.id);
}

export async function storedSourceCohorts(ctx: Context, sourceId: string): Promise<SourceCohortView[]> {
  const rows = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'name', 'size', 'last_computed', 'origin', 'source_id'])
    .where('source_id', '=', sourceId)
    .orderBy('name')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ ...r, source_id: r.source_id ?? sourceId }));
}

/** Stored cohorts of a source; fetched from Amplitude when asked to, or when none are known yet. */
export async function listSourceCohorts(
  ctx: Context,
  sourceId: string,
  opts: { refresh?: boolean } = {},
): Promise<SourceCohortView[]> {
  await getSource(ctx, sourceId);
  if (!opts.refresh) {
    const stored = await storedSourceCohorts(ctx, sourceId);
    if (stored.length > 0) return stored;
  }
  return refreshSourceCohorts(ctx, sourceId);
}
