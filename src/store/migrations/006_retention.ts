import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database';

// Forwarded events leave the outbox after the retention period (src/jobs/retention.ts); the
// stream keeps how many it let go, so its received/forwarded counters stay whole.
// The minute sweep for unapplied cohort messages read the whole inbox, and on SQLite the columns
// after `body` (~100 kB each) sit past its overflow pages: only unapplied rows are indexed now.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('streams').addColumn('pruned_forwarded', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.createIndex('webhook_inbox_unapplied').on('webhook_inbox').column('id').where(sql.ref('applied_at'), 'is', null).execute();
}
