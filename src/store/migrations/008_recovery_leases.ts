import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// Recovery after a crash (src/store/leases.ts): work is held by short leases that their process
// renews, so a dead process's work is free within seconds.
// - runs.lease_owner / lease_until: a run is leased by the process working it until its diff is
//   applied and, when that process delivers it too (the CLI), until the delivery ends. Any process
//   closes a run whose lease lapsed. Runs left running before this migration get the lease the
//   old rule gave them: an hour from their start.
// - Leased ledger rows and outbox events are indexed by owner (only those: a few thousand at a
//   time), so a heartbeat renews, and a sweep frees, exactly what one worker holds.
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('runs').addColumn('lease_owner', 'text').execute();
  await db.schema.alterTable('runs').addColumn('lease_until', 'bigint').execute();
  await sql`UPDATE runs SET lease_until = started_at + 3600000 WHERE status = 'running' AND applied_at IS NULL`.execute(
    db,
  );
  await db.schema
    .createIndex('runs_leased')
    .on('runs')
    .column('lease_until')
    .where(sql.ref('lease_until'), 'is not', null)
    .execute();
  await db.schema
    .createIndex('ledger_leased')
    .on('ledger')
    .column('lease_owner')
    .where(sql.ref('lease_owner'), 'is not', null)
    .execute();
  await db.schema
    .createIndex('stream_events_leased')
    .on('stream_events')
    .column('lease_owner')
    .where(sql.ref('lease_owner'), 'is not', null)
    .execute();
}
