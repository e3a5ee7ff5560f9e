import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Sync engine additions (both dialects):
// - cohorts.blank_ids: blank/anonymous rows seen by the last file import, reported by every
//   run of that cohort as skipped_anonymous (they never reach the membership table).
// - runs.applied_at: set when a run's diff has been written to the ledger; only applied runs
//   may be finalized by a delivery pass, so a run still loading its snapshot is never
//   "completed" with zero rows by a concurrent worker.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('cohorts')
    .addColumn('blank_ids', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('runs').addColumn('applied_at', 'bigint').execute();
}
