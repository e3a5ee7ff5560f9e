import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely, RawBuilder } from 'kysely';
import type { DB } from '../schema';
import type { CohortMembersImport } from './engine';
import { TempHeap } from './temp-heap.sqlite';

/**
 * One explicit transaction on the raw handle around the streamed file, under Kysely's connection
 * lock so no other statement joins it. Ids go through a TempHeap into cohort_members: inserting
 * them in file order took several times longer for a million ids than the heap and its sorted
 * copy, and the later in-place diffs walk fewer, fuller pages.
 */
export function importCohortMembersSqlite(
  h: BetterSqlite3.Database,
  db: Kysely<DB>,
  job: CohortMembersImport,
): Promise<number> {
  const exec = async (q: RawBuilder<unknown>) => {
    const c = q.compile(db);
    h.prepare(c.sql).run(...(c.parameters as unknown[]));
  };
  return db.connection().execute(async () => {
    const heap = new TempHeap(h, 'import_heap');
    h.exec('BEGIN IMMEDIATE');
    try {
      await job.before(exec);
      for await (const ids of job.batches) heap.append(ids);
      const inserted = heap.drainInto('cohort_members (cohort_id, external_id)', '?, external_id', job.cohortId);
      await job.after(exec, inserted);
      h.exec('COMMIT');
      return inserted;
    } catch (e) {
      if (h.inTransaction) h.exec('ROLLBACK');
      heap.drop();
      throw e;
    }
  });
}
