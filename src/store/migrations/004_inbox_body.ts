import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// webhook_inbox.users → body: the cohort-webhook message is kept as the text Amplitude sent
// (validated before it is stored), not re-serialised from the parsed users: re-encoding a
// 1,000-user message was a fifth of the acknowledgement's cost (bench webhook_ack). Rows stored
// before this migration hold the users array alone; the reader accepts both.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('webhook_inbox').renameColumn('users', 'body').execute();
}
