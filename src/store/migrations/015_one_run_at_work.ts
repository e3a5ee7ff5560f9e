import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// A sync has at most one run at work: leased by its process, from its start until its diff is
// applied (and through its delivery when that process delivers it too). Two at once would each
// download the cohort, spending its download budget twice, and diff against the same ledger for
// the same result. The unique index makes the refusal atomic in both databases and across
// processes; dry runs change nothing and may overlap anything.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  // Leased runs already overlapping in one sync: all but the newest lose their owner, so their
  // process can no longer renew or apply them and recovery closes them once their lease lapses.
  await sql`UPDATE runs SET lease_owner = NULL
     WHERE lease_owner IS NOT NULL AND dry_run = 0 AND EXISTS (
       SELECT 1 FROM runs newer
        WHERE newer.sync_id = runs.sync_id AND newer.lease_owner IS NOT NULL AND newer.dry_run = 0
          AND (newer.started_at > runs.started_at OR (newer.started_at = runs.started_at AND newer.id > runs.id)))`.execute(
    db,
  );
  await sql`CREATE UNIQUE INDEX runs_one_at_work ON runs (sync_id) WHERE lease_owner IS NOT NULL AND dry_run = 0`.execute(
    db,
  );
}
