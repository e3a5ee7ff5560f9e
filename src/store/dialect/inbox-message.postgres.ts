import type pg from 'pg';
import { PgGroupCommit } from '../pg-group-commit';
import type { InboxValues } from './engine';

/** Cohort messages per batch: up to ~1,000 users each, deflated, so a batch stays a few MB. */
const MAX_ROWS = 200;
/** Full batches written at once (a partial batch waits for the one in flight; see pg-group-commit.ts). */
const MAX_IN_FLIGHT = 2;

/** Every message of the batch as arrays, inserted in arrival order: one statement, one commit. */
const INSERT = `INSERT INTO webhook_inbox (source_id, message_id, cohort_id, cohort_name, in_cohort, computed_time, body, body_deflated, received_at)
  SELECT s, m, c, cn, ic, ct, b, bd, ra
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::bytea[], $9::bigint[])
    WITH ORDINALITY AS v(s, m, c, cn, ic, ct, b, bd, ra, ord)
  ORDER BY ord
  ON CONFLICT (source_id, message_id) DO NOTHING
  RETURNING id, source_id, message_id`;

/** Parsed and planned once per connection, not once a batch (see stream-events.postgres.ts). */
const STATEMENT = 'ampsignal_insert_webhook_inbox';

export function inboxMessageInserterPg(pool: pg.Pool) {
  const committer = new PgGroupCommit<InboxValues, number | null>({
    writeBatch: (jobs) => insertBatch(pool, jobs),
    rowsOf: () => 1,
    maxRows: MAX_ROWS,
    maxInFlight: MAX_IN_FLIGHT,
  });
  return (values: InboxValues) => committer.submit(values);
}

async function insertBatch(pool: pg.Pool, jobs: InboxValues[]): Promise<Array<number | null>> {
  const col = <K extends keyof InboxValues>(k: K) => jobs.map((j) => j[k] ?? null);
  const r = await pool.query<{ id: number; source_id: string; message_id: string }>({
    name: STATEMENT,
    text: INSERT,
    values: [
      col('source_id'),
      col('message_id'),
      col('cohort_id'),
      col('cohort_name'),
      col('in_cohort'),
      col('computed_time'),
      col('body'),
      col('body_deflated'),
      col('received_at'),
    ],
  });
  // A message offered twice in one batch is stored for the first request; the second is a repeat.
  const ids = new Map(r.rows.map((x) => [`${x.source_id}\u0000${x.message_id}`, Number(x.id)]));
  return jobs.map((j) => {
    const key = `${j.source_id}\u0000${j.message_id}`;
    const id = ids.get(key);
    ids.delete(key);
    return id ?? null;
  });
}
