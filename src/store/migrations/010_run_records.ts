import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// Run history (src/sync/records.ts):
// - run_records: one immutable row per settled record of a run (delivered, not_found, failed),
//   appended in the transaction that writes the ledger outcome it mirrors. Kept small because a
//   1M-member first sync writes 1M of them: the run is an integer key (run_keys), the operation
//   and outcome one integer code, the vendor's message an integer (record_messages), the time in
//   seconds. The primary key (run_key, external_id, seq) is the only index: it pages a run's
//   records in user order and finds one user's record in a run; on SQLite the table is
//   WITHOUT ROWID, so the key is the row and no second copy of the user id exists. `seq` tells
//   apart two records of one user in one run (a webhook minute that adds then removes).
// - run_keys: the integer standing for a run's text id in run_records.
// - record_messages: each distinct vendor message once.
// - runs.retried: earlier not_found/failed users tried again, apart from added and removed.
export async function up(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const serial = dialect === 'postgres' ? 'bigserial' : 'integer';
  await db.schema
    .createTable('run_keys')
    .addColumn('key', serial, (c) => c.primaryKey())
    .addColumn('run_id', 'text', (c) => c.notNull().unique())
    .execute();
  await db.schema
    .createTable('record_messages')
    .addColumn('id', serial, (c) => c.primaryKey())
    .addColumn('text', 'text', (c) => c.notNull().unique())
    .execute();
  await db.schema
    .createTable('run_records')
    .addColumn('run_key', 'integer', (c) => c.notNull())
    .addColumn('external_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('code', 'integer', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('at', 'integer', (c) => c.notNull())
    .addColumn('message_id', 'integer')
    .addPrimaryKeyConstraint('run_records_pk', ['run_key', 'external_id', 'seq'])
    .modifyEnd(dialect === 'sqlite' ? sql`without rowid` : sql``)
    .execute();
  await db.schema
    .alterTable('runs')
    .addColumn('retried', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
