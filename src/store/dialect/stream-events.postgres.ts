import type pg from 'pg';
import { PgGroupCommit } from '../pg-group-commit';
import type { StreamEventRow, StreamEventsJob } from './engine';

/** A batch closes at this many events: a few MB of payload, one statement well under a second. */
const MAX_ROWS = 5_000;
/** Full batches written at once (a partial batch waits for the one in flight; see pg-group-commit.ts). */
const MAX_IN_FLIGHT = 2;

/**
 * The events of every request in the batch go in as arrays (one parameter per column, so no
 * bind-parameter limit) and are inserted in arrival order; the duplicates of each stream are
 * counted in the same statement. One statement is one transaction: one round trip, one commit.
 */
const INSERT = `WITH ins AS (
    INSERT INTO stream_events (stream_id, event_id, kind, payload, status, attempts, next_attempt_at, reason, received_at)
    SELECT s, e, k, p, st, 0, n, r, ra
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])
      WITH ORDINALITY AS v(s, e, k, p, st, n, r, ra, ord)
    ORDER BY ord
    ON CONFLICT (stream_id, event_id) DO NOTHING
    RETURNING stream_id, event_id
  ), offered AS (
    SELECT s AS stream_id, sum(n)::bigint AS n FROM unnest($9::text[], $10::bigint[]) AS o(s, n) GROUP BY s
  ), dups AS (
    SELECT o.stream_id, o.n - (SELECT count(*) FROM ins WHERE ins.stream_id = o.stream_id) AS n FROM offered o
  ), bump AS (
    UPDATE streams t SET duplicates = t.duplicates + d.n FROM dups d WHERE t.id = d.stream_id AND d.n > 0
  )
  SELECT stream_id, event_id FROM ins`;

/**
 * A named statement: each connection parses and plans it once, instead of once a batch, which
 * halved PostgreSQL's CPU per event at the batch sizes 32 senders make (bench/ingest: ~11 rows).
 * Session pooling only, as the README already requires behind PgBouncer.
 */
const STATEMENT = 'ampsignal_insert_stream_events';

export function streamEventsInserterPg(pool: pg.Pool) {
  const committer = new PgGroupCommit<StreamEventsJob, Set<string>>({
    writeBatch: (jobs) => insertBatch(pool, jobs),
    rowsOf: (job) => job.rows.length,
    maxRows: MAX_ROWS,
    maxInFlight: MAX_IN_FLIGHT,
  });
  return (job: StreamEventsJob) => committer.submit(job);
}

async function insertBatch(pool: pg.Pool, jobs: StreamEventsJob[]): Promise<Array<Set<string>>> {
  const rows = jobs.flatMap((j) => j.rows);
  const col = <K extends keyof StreamEventRow>(k: K) => rows.map((r) => r[k]);
  const r = await pool.query<{ stream_id: string; event_id: string }>({
    name: STATEMENT,
    text: INSERT,
    values: [
      col('stream_id'),
      col('event_id'),
      col('kind'),
      col('payload'),
      col('status'),
      col('next_attempt_at'),
      col('reason'),
      col('received_at'),
      jobs.map((j) => j.streamId),
      jobs.map((j) => j.rows.length + j.extra),
    ],
  });
  return creditInArrivalOrder(jobs, new Set(r.rows.map((x) => `${x.stream_id}\u0000${x.event_id}`)));
}

/** Each stored event belongs to the first request that offered it, as if the requests ran one after another. */
function creditInArrivalOrder(jobs: StreamEventsJob[], stored: Set<string>): Array<Set<string>> {
  return jobs.map((j) => {
    const mine = new Set<string>();
    for (const row of j.rows) {
      const key = `${row.stream_id}\u0000${row.event_id}`;
      if (stored.delete(key)) mine.add(row.event_id);
    }
    return mine;
  });
}
