import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// One schema for both dialects: integers for booleans, bigint epoch-ms for times, text for JSON.
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';

  await db.schema
    .createTable('sources')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('region', 'text', (c) => c.notNull())
    .addColumn('api_url', 'text')
    .addColumn('api_key_enc', 'text', (c) => c.notNull())
    .addColumn('secret_key_enc', 'text', (c) => c.notNull())
    .addColumn('webhook_secret_enc', 'text', (c) => c.notNull())
    .addColumn('download_budget', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('destinations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('source_id', 'text', (c) => c.references('sources.id'))
    .addColumn('app_id', 'text', (c) => c.notNull())
    .addColumn('api_key_enc', 'text', (c) => c.notNull())
    .addColumn('api_url', 'text', (c) => c.notNull())
    .addColumn('tag_key_template', 'text', (c) => c.notNull())
    .addColumn('external_id_property', 'text', (c) => c.notNull())
    .addColumn('max_tags_per_user', 'integer', (c) => c.notNull())
    .addColumn('rate_limit_per_second', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('cohorts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('source_id', 'text', (c) => c.references('sources.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('size', 'integer')
    .addColumn('last_computed', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('cohort_members')
    .addColumn('cohort_id', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('cohort_members_pk', ['cohort_id', 'external_id'])
    .modifyEnd(dialect === 'sqlite' ? sql`without rowid` : sql``)
    .execute();

  await db.schema
    .createTable('syncs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('cohort_id', 'text', (c) => c.notNull().references('cohorts.id'))
    .addColumn('destination_id', 'text', (c) => c.notNull().references('destinations.id'))
    .addColumn('cadence', 'text', (c) => c.notNull())
    .addColumn('tag_key', 'text', (c) => c.notNull())
    .addColumn('external_id_property', 'text', (c) => c.notNull())
    .addColumn('segment_id', 'text')
    .addColumn('segment_error', 'text')
    .addColumn('guard_threshold', 'real', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('next_run_at', 'bigint')
    .addColumn('last_run_id', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('syncs_cohort_destination', ['cohort_id', 'destination_id'])
    .execute();
  await db.schema.createIndex('syncs_due').on('syncs').columns(['status', 'next_run_at']).execute();

  await db.schema
    .createTable('ledger')
    .addColumn('sync_id', 'text', (c) => c.notNull())
    .addColumn('destination_id', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('desired', 'integer', (c) => c.notNull())
    .addColumn('confirmed', 'integer', (c) => c.notNull())
    .addColumn('source_ts', 'bigint', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('outcome', 'text')
    .addColumn('error', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint')
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('ledger_pk', ['sync_id', 'external_id'])
    .modifyEnd(dialect === 'sqlite' ? sql`without rowid` : sql``)
    .execute();
  // Only rows that need a write are indexed for delivery: steady state keeps this index tiny.
  await db.schema
    .createIndex('ledger_pending')
    .on('ledger')
    .columns(['destination_id', 'external_id'])
    .where(sql.ref('desired'), '<>', sql.ref('confirmed'))
    .execute();
  await db.schema.createIndex('ledger_run').on('ledger').columns(['run_id', 'outcome']).execute();

  await db.schema
    .createTable('staging')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('staging_pk', ['run_id', 'external_id'])
    .modifyEnd(dialect === 'sqlite' ? sql`without rowid` : sql``)
    .execute();

  await db.schema
    .createTable('runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('sync_id', 'text', (c) => c.notNull().references('syncs.id'))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('dry_run', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('members', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('added', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('removed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('unchanged', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('skipped_anonymous', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('delivered', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('not_found', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pending', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .addColumn('hold_reason', 'text')
    .addColumn('sample', 'text')
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .execute();
  await db.schema.createIndex('runs_sync').on('runs').columns(['sync_id', 'started_at']).execute();

  await db.schema
    .createTable('webhook_inbox')
    .addColumn('id', serial, (c) => c.primaryKey())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('cohort_id', 'text', (c) => c.notNull())
    .addColumn('cohort_name', 'text')
    .addColumn('in_cohort', 'integer', (c) => c.notNull())
    .addColumn('computed_time', 'bigint', (c) => c.notNull())
    .addColumn('users', 'text', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('applied_at', 'bigint')
    .addColumn('error', 'text')
    .addUniqueConstraint('webhook_inbox_message', ['source_id', 'message_id'])
    .execute();

  await db.schema
    .createTable('downloads')
    .addColumn('id', serial, (c) => c.primaryKey())
    .addColumn('source_id', 'text', (c) => c.notNull())
    .addColumn('cohort_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text')
    .addColumn('month', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('downloads_month').on('downloads').columns(['source_id', 'month']).execute();

  await db.schema
    .createTable('streams')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('amplitude_api_key_enc', 'text', (c) => c.notNull())
    .addColumn('region', 'text', (c) => c.notNull())
    .addColumn('amplitude_url', 'text')
    .addColumn('webhook_secret_enc', 'text', (c) => c.notNull())
    .addColumn('event_names', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('duplicates', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('stream_events')
    .addColumn('id', serial, (c) => c.primaryKey())
    .addColumn('stream_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'bigint')
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .addColumn('forwarded_at', 'bigint')
    .addUniqueConstraint('stream_events_event', ['stream_id', 'event_id'])
    .execute();
  await db.schema
    .createIndex('stream_events_pending')
    .on('stream_events')
    .columns(['stream_id', 'next_attempt_at', 'id'])
    .where(sql.ref('status'), '=', sql.lit('pending'))
    .execute();
  await db.schema.createIndex('stream_events_status').on('stream_events').columns(['stream_id', 'status']).execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', serial, (c) => c.primaryKey())
    .addColumn('task', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('queue', 'text')
    .addColumn('job_key', 'text', (c) => c.unique())
    .addColumn('run_at', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('locked_by', 'text')
    .addColumn('locked_until', 'bigint')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('jobs_due').on('jobs').columns(['run_at', 'id']).execute();
}
