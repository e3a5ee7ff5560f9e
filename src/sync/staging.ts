import { type RawBuilder, sql } from 'kysely';
import { type Context, runSnapshotTables, type SnapshotStage, type StagedAt, tempSnapshotNames } from '../store';
import type { SnapshotSource } from './snapshot';

export type { StagedAt } from '../store';

/** Which snapshot a diff reads: `cohortId` is required for 'cohort'. */
export interface SnapshotRef {
  runId: string;
  stagedAt?: StagedAt;
  cohortId?: string;
}

/** `SELECT external_id FROM <the run's snapshot>`: each id once, in no particular order. */
export function stagedIds(ref: SnapshotRef): RawBuilder<unknown> {
  const at = ref.stagedAt ?? 'staging';
  if (at === 'temp') return sql`SELECT external_id FROM ${sql.table(`temp.${tempSnapshotNames(ref.runId).snap}`)}`;
  if (at === 'table') return sql`SELECT external_id FROM ${sql.table(runSnapshotTables(ref.runId).snap)}`;
  if (at === 'cohort') {
    if (ref.cohortId === undefined) throw new TypeError('a cohort snapshot needs its cohort id');
    return sql`SELECT external_id FROM cohort_members WHERE cohort_id = ${ref.cohortId}`;
  }
  return sql`SELECT external_id FROM staging WHERE run_id = ${ref.runId}`;
}

/** The writer of one run's snapshot, where this database diffs it (see StagedAt). */
export function snapshotWriter(ctx: Context, runId: string): SnapshotStage {
  return ctx.store.engine.stageSnapshot(runId);
}

/** Drops a run's own snapshot tables, if any; its `staging` rows stay. Cheap and idempotent. */
export function dropTempStaging(ctx: Context, runId: string): Promise<void> {
  return ctx.store.engine.dropStagedSnapshot(runId);
}

/** Discards every form of a run's snapshot: its own tables and its `staging` rows. */
export async function deleteStaging(ctx: Context, runId: string): Promise<void> {
  await dropTempStaging(ctx, runId);
  await ctx.store.db.deleteFrom('staging').where('run_id', '=', runId).execute();
}

/**
 * The snapshot of a file-imported cohort copied by the database in one statement (PostgreSQL: its
 * statements read per-statement snapshots, so a run must not diff `cohort_members` in place
 * while an import may replace them; SQLite diffs them in place, see StagedAt).
 */
export function fileSnapshotSource(cohortId: string): SnapshotSource {
  return {
    kind: 'file',
    async load(ctx, _runId, writer) {
      const db = ctx.store.db;
      await writer.addSelected(sql`SELECT external_id FROM cohort_members WHERE cohort_id = ${cohortId}`);
      const c = await db.selectFrom('cohorts').select(['blank_ids']).where('id', '=', cohortId).executeTakeFirst();
      return { skippedAnonymous: Number(c?.blank_ids ?? 0), sourceTs: Date.now() };
    },
  };
}
