import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { GroupCommit } from '../group-commit';
import type { DB } from '../schema';
import type { InboxValues } from './engine';

/**
 * Inbox inserts of concurrent webhook requests share one commit (group-commit.ts), each as a
 * prepared statement: through the query builder the insert cost several times more (bench
 * webhook_ack).
 */
export function inboxMessageInserter(h: BetterSqlite3.Database, db: Kysely<DB>) {
  // Prepared on first use: the store is opened before its migrations run.
  let stmt: BetterSqlite3.Statement | undefined;
  const prepare = () =>
    h.prepare(
      `INSERT INTO webhook_inbox (source_id, message_id, cohort_id, cohort_name, in_cohort, computed_time, body, body_deflated, received_at)
     VALUES (@source_id, @message_id, @cohort_id, @cohort_name, @in_cohort, @computed_time, @body, @body_deflated, @received_at)
     ON CONFLICT (source_id, message_id) DO NOTHING RETURNING id`,
    );
  const write = (values: InboxValues): number | null => {
    stmt ??= prepare();
    const r = stmt.get(values) as { id: number } | undefined;
    return r ? Number(r.id) : null;
  };
  const committer = new GroupCommit(h, write, (values: InboxValues) => insertInboxMessageQb(db, values));
  return (values: InboxValues) => committer.submit(values);
}

/** The same insert through the query builder, while a Kysely transaction holds the handle: the new row's id, or null for a message already stored under (source, message_id). */
export async function insertInboxMessageQb(db: Kysely<DB>, values: InboxValues): Promise<number | null> {
  const row = await db
    .insertInto('webhook_inbox')
    .values({ ...values, applied_at: null, error: null })
    .onConflict((oc) => oc.columns(['source_id', 'message_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row ? Number(row.id) : null;
}
