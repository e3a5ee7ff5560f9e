import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// pacing_handoffs: per OneSignal app, which process's limiter sent last and its windows when
// its delivery pass ended (answers in the last second, users answered in it). A rate
// limiter lives in one process; when the app's delivery queue hands over to another process,
// that one takes the windows over (src/sync/handoff.ts).
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('pacing_handoffs')
    .addColumn('app_id', 'text', (c) => c.primaryKey())
    .addColumn('limiter_id', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .execute();
}
