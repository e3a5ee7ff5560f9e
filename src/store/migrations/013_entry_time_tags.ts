import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Entry-time tag values (issue 15 item 3):
// - syncs.tag_value: how a member's tag value is written, 'presence' ("1") or 'entered_at' (the
//   Unix time in seconds the user entered the cohort, for OneSignal's time_elapsed filters).
// - ledger.entered_at: when the row's user last became a member (epoch ms, the membership's
//   source time); null for rows that never were one. Existing members keep null until they
//   re-enter; a presence sync never reads it.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('syncs')
    .addColumn('tag_value', 'text', (c) => c.notNull().defaultTo('presence'))
    .execute();
  await db.schema.alterTable('ledger').addColumn('entered_at', 'bigint').execute();
}
