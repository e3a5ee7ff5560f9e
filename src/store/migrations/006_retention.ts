import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Forwarded events leave the outbox after the retention period (src/events/retention.ts); the
// stream keeps how many it let go, so its received/forwarded counters stay whole.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('streams').addColumn('pruned_forwarded', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
}
