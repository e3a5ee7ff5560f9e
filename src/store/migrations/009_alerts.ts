import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// Alerts (src/jobs/alerts.ts, src/app/alerts.ts):
// - alert_channels: where alerts go. `settings` is JSON without secrets (shown to users);
//   `secret_enc` holds what must not be shown (a webhook URL carries its token, an SMTP password).
// - alerts: one row per episode of a condition. At most one open row per condition key (the
//   partial unique index): two evaluators that both see a new condition insert once.
// - alert_notifications: the outbox of what each channel is to be told, one row per
//   (alert, opened|resolved, channel), claimed with a lease by whichever evaluator sends it.
// - syncs.verify_match_rate / verified_at: the last read-back match rate of a sync (0..1), written
//   by `sync verify`; the drift condition reads it.
// - runs_held: the held runs, which the minute evaluation looks up without reading the history.
// - webhook_inbox (cohort_id, received_at): when a real-time cohort last pushed, by index alone
//   (on SQLite the row's later columns sit past its body's overflow pages).
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('alert_channels')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('condition_key', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('message', 'text', (c) => c.notNull())
    .addColumn('link', 'text')
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('opened_at', 'bigint', (c) => c.notNull())
    .addColumn('resolved_at', 'bigint')
    .execute();
  await db.schema
    .createIndex('alerts_open_condition')
    .unique()
    .on('alerts')
    .column('condition_key')
    .where(sql.ref('status'), '=', sql.lit('open'))
    .execute();
  await db.schema.createIndex('alerts_opened').on('alerts').column('opened_at').execute();

  await db.schema
    .createTable('alert_notifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('alert_id', 'text', (c) => c.notNull().references('alerts.id').onDelete('cascade'))
    .addColumn('event', 'text', (c) => c.notNull())
    .addColumn('channel_id', 'text', (c) => c.notNull().references('alert_channels.id').onDelete('cascade'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('sent_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('alert_notifications_once', ['alert_id', 'event', 'channel_id'])
    .execute();
  await db.schema
    .createIndex('alert_notifications_due')
    .on('alert_notifications')
    .columns(['next_attempt_at'])
    .where(sql.ref('status'), '=', sql.lit('pending'))
    .execute();
  await db.schema.createIndex('alert_notifications_channel').on('alert_notifications').column('channel_id').execute();

  await db.schema.alterTable('syncs').addColumn('verify_match_rate', 'double precision').execute();
  await db.schema.alterTable('syncs').addColumn('verified_at', 'bigint').execute();

  await db.schema
    .createIndex('runs_held')
    .on('runs')
    .column('id')
    .where(sql.ref('status'), '=', sql.lit('held'))
    .execute();

  await db.schema
    .createIndex('webhook_inbox_cohort_received')
    .on('webhook_inbox')
    .columns(['cohort_id', 'received_at'])
    .execute();
}
