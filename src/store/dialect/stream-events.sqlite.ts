import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { GroupCommit } from '../group-commit';
import type { DB } from '../schema';
import type { StreamEventsJob } from './engine';

// A multi-row insert through the query builder (used while a Kysely transaction holds the
// handle): 9 columns x 1,000 rows stays far below SQLite's 32,766 bind parameters.
const INSERT_CHUNK = 1_000;

/**
 * Concurrent requests' events share one commit (group-commit.ts), written by prepared
 * statements: through the query builder each event cost several times more (bench ingest).
 */
export function streamEventsInserter(h: BetterSqlite3.Database, db: Kysely<DB>) {
  const committer = new GroupCommit(h, eventWriter(h), (job: StreamEventsJob) => viaQueryBuilder(db, job));
  return (job: StreamEventsJob) => committer.submit(job);
}

function eventWriter(h: BetterSqlite3.Database): (job: StreamEventsJob) => Set<string> {
  // Prepared on first use: the store is opened before its migrations run.
  let insert: BetterSqlite3.Statement | undefined;
  let bump: BetterSqlite3.Statement | undefined;
  return (job) => {
    insert ??= h.prepare(
      `INSERT INTO stream_events (stream_id, event_id, kind, payload, status, attempts, next_attempt_at, reason, received_at)
       VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (stream_id, event_id) DO NOTHING`,
    );
    bump ??= h.prepare('UPDATE streams SET duplicates = duplicates + ? WHERE id = ?');
    const inserted = new Set<string>();
    for (const r of job.rows) {
      const info = insert.run(
        r.stream_id,
        r.event_id,
        r.kind,
        r.payload,
        r.status,
        r.next_attempt_at,
        r.reason,
        r.received_at,
      );
      if (info.changes > 0) inserted.add(r.event_id);
    }
    const dups = job.rows.length - inserted.size + job.extra;
    if (dups > 0) bump.run(dups, job.streamId);
    return inserted;
  };
}

function viaQueryBuilder(db: Kysely<DB>, job: StreamEventsJob): Promise<Set<string>> {
  return db.transaction().execute(async (trx) => {
    const inserted = new Set<string>();
    for (let i = 0; i < job.rows.length; i += INSERT_CHUNK) {
      const got = await trx
        .insertInto('stream_events')
        .values(job.rows.slice(i, i + INSERT_CHUNK).map((r) => ({ ...r, attempts: 0 })))
        .onConflict((oc) => oc.columns(['stream_id', 'event_id']).doNothing())
        .returning('event_id')
        .execute();
      for (const g of got) inserted.add(g.event_id);
    }
    const dups = job.rows.length - inserted.size + job.extra;
    if (dups > 0) {
      await trx
        .updateTable('streams')
        .set((eb) => ({ duplicates: eb('duplicates', '+', dups) }))
        .where('id', '=', job.streamId)
        .execute();
    }
    return inserted;
  });
}
