import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { DB } from '../schema';
import type { RunRecordValues } from './engine';
import { onHandle } from './sqlite-handle';

/**
 * One prepared statement per record inside the caller's transaction: each run costs
 * microseconds, where one multi-row INSERT through the query builder cost milliseconds of
 * compiling and parsing per batch (10 parameters and a subquery per row), all on the event loop.
 * Row by row, a record's seq subquery sees the records inserted before it in the same batch.
 */
export function runRecordsInserter(h: BetterSqlite3.Database) {
  let stmt: BetterSqlite3.Statement | undefined;
  return (db: Kysely<DB>, records: RunRecordValues[]): Promise<void> =>
    onHandle(db, () => {
      stmt ??= h.prepare(`INSERT INTO run_records (run_key, external_id, seq, code, status, attempts, at, message_id)
        VALUES (@run_key, @external_id,
          COALESCE((SELECT MAX(p.seq) + 1 FROM run_records p WHERE p.run_key = @run_key AND p.external_id = @external_id), 0),
          @code, @status, @attempts, @at, @message_id)`);
      for (const r of records) stmt.run(r);
    });
}
