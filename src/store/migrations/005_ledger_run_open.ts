import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// ledger_run indexed every ledger row by the run that last changed it, so a steady million-row
// ledger kept a million-entry index, and a run removing 1% of a cohort rewrote an index page
// for nearly every removed user (half the WAL of the diff, bench diff). Delivered rows are the
// steady state; only the open ones (not yet sent, retrying, not found, failed) are indexed now,
// and a run's delivered count is what is left of its changes (src/sync/runs.ts countOutcomes).
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.dropIndex('ledger_run').execute();
  await db.schema
    .createIndex('ledger_run_open')
    .on('ledger')
    .columns(['run_id', 'outcome'])
    .where(sql<boolean>`outcome IS NULL OR outcome <> 'delivered'`)
    .execute();
}
