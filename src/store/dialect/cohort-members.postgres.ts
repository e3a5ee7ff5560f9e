import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB } from '../schema';
import type { CohortMembersImport } from './engine';

/** One transaction; each batch of ids is one unnest() insert (one round trip), duplicates absorbed by the key. */
export function importCohortMembersPg(db: Kysely<DB>, job: CohortMembersImport): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const exec = (q: RawBuilder<unknown>) => q.execute(trx);
    await job.before(exec);
    let inserted = 0;
    for await (const ids of job.batches) {
      const r =
        await sql`INSERT INTO cohort_members (cohort_id, external_id) SELECT ${job.cohortId}, x FROM unnest(${ids}::text[]) AS t(x) ON CONFLICT DO NOTHING`.execute(
          trx,
        );
      inserted += Number(r.numAffectedRows ?? 0);
    }
    await job.after(exec, inserted);
    return inserted;
  });
}
