import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { GroupCommit } from '../group-commit';
import type { DB } from '../schema';
import type { InboxValues } from './engine';
import { insertInboxMessageQb } from './inbox-message.postgres';

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
