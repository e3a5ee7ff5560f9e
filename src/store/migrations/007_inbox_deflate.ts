import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// webhook_inbox.body_deflated: large cohort messages are kept raw-deflated (level 1, done on the
// parse worker that validated them), with `body` left ''. Writing ~90 kB per 1,000-user message
// was most of what the acknowledgement still cost the event loop once parsing moved off it
// (bench webhook_ack), and the inbox holds a retention period of messages: such bodies shrink
// tenfold or more. Small messages are still stored as text; the reader takes either.
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('webhook_inbox')
    .addColumn('body_deflated', dialect === 'postgres' ? 'bytea' : 'blob')
    .execute();
}
