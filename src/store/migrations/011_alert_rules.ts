import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Alert rules (src/app/alert-rules.ts): which kinds of alert a channel hears. A channel without
// rules hears every kind; one with rules hears only their kinds. One rule per (channel, kind).
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('alert_rules')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('channel_id', 'text', (c) => c.notNull().references('alert_channels.id').onDelete('cascade'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('alert_rules_once', ['channel_id', 'kind'])
    .execute();
}
