import type { Kysely } from 'kysely';
import type { DB } from '../schema';
import type { InboxValues } from './engine';

/** The new row's id, or null for a message already stored under (source, message_id). */
export async function insertInboxMessageQb(db: Kysely<DB>, values: InboxValues): Promise<number | null> {
  const row = await db
    .insertInto('webhook_inbox')
    .values({ ...values, applied_at: null, error: null })
    .onConflict((oc) => oc.columns(['source_id', 'message_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row ? Number(row.id) : null;
}
