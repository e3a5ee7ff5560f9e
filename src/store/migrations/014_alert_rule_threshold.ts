import type { Kysely } from 'kysely';
import type { Dialect } from '../database';

// Per-rule alert thresholds (src/app/alert-rules.ts): a rule of a kind with a threshold
// (dead_letters, download_budget, realtime_silent, drift) may set its own; null keeps the
// process's default (AMPSIGNAL_ALERT_*).
export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('alert_rules').addColumn('threshold', 'double precision').execute();
}
