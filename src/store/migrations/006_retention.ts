import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// Housekeeping for outboxes that hold a retention period of traffic (src/jobs/retention.ts):
// - streams.forwarded_total: the forwarder adds what it marks forwarded in the same transaction,
//   so the count survives pruning and no longer needs a count over every forwarded event.
// - stream_events is indexed only where work or questions are: pending (001), dead letters, and
//   forwarded by time (recent throughput, retention). The (stream_id, status) index covered every
//   event, and every accepted event paid for it.
// - The minute sweep for unapplied cohort messages read the whole inbox, and on SQLite the columns
//   after `body` (~100 kB each) sit past its overflow pages: only unapplied rows are indexed now.
// - Ledger rows of users who left a cohort and whose tag is gone (desired = confirmed = 0) are
//   indexed by age, so retention can delete the old ones without walking the members.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('streams')
    .addColumn('forwarded_total', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
  await sql`UPDATE streams SET forwarded_total = (SELECT COUNT(*) FROM stream_events e WHERE e.stream_id = streams.id AND e.status = 'forwarded')`.execute(
    db,
  );
  await db.schema
    .createIndex('stream_events_dead')
    .on('stream_events')
    .columns(['stream_id', 'id'])
    .where(sql.ref('status'), '=', sql.lit('dead'))
    .execute();
  await db.schema
    .createIndex('stream_events_forwarded')
    .on('stream_events')
    .columns(['stream_id', 'forwarded_at'])
    .where(sql.ref('status'), '=', sql.lit('forwarded'))
    .execute();
  await db.schema.dropIndex('stream_events_status').execute();
  await db.schema
    .createIndex('ledger_left')
    .on('ledger')
    .columns(['sync_id', 'updated_at'])
    .where(sql<boolean>`desired = 0 AND confirmed = 0`)
    .execute();
  await db.schema
    .createIndex('webhook_inbox_unapplied')
    .on('webhook_inbox')
    .column('id')
    .where(sql.ref('applied_at'), 'is', null)
    .execute();
}
