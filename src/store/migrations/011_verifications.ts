import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Read-back verification (src/sync/verify.ts, `ampsignal sync verify`): one row per verification
// of a sync: its sample, how many users matched the ledger, the drifted users (JSON, capped), and
// how many were marked pending again (--repair). `lease_until` is renewed while it runs, so one
// left `running` by a process that died reads as abandoned. syncs.verify_match_rate (migration
// 009) keeps the last completed rate, which the drift alert reads.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('verifications')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('sync_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('trigger', 'text', (c) => c.notNull())
    .addColumn('sample_size', 'integer', (c) => c.notNull())
    .addColumn('checked', 'integer', (c) => c.notNull())
    .addColumn('matched', 'integer', (c) => c.notNull())
    .addColumn('drifted', 'integer', (c) => c.notNull())
    .addColumn('skipped', 'integer', (c) => c.notNull())
    .addColumn('repaired', 'integer', (c) => c.notNull())
    .addColumn('match_rate', 'double precision')
    .addColumn('drift', 'text')
    .addColumn('error', 'text')
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    .addColumn('lease_until', 'bigint')
    .execute();
  await db.schema
    .createIndex('verifications_sync_started')
    .on('verifications')
    .columns(['sync_id', 'started_at'])
    .execute();
}
