import { type Kysely, sql } from 'kysely';
import type { Dialect } from '../database';

// Cohort-webhook compute times are clamped to the receive time when they lie in the future
// (connectors/amplitude/webhook-payload.ts membershipTimeMs). Ledger rows and cohorts that took
// such a time before the clamp existed outrank every later snapshot and delta: their membership
// is frozen. They are set to now, the newest time anything can honestly claim, so the next
// snapshot or delta decides them again. The margin is the clamp's allowance for clock skew.
const SKEW_MS = 5 * 60_000;

export async function up(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  const now = Date.now();
  await sql`UPDATE ledger SET source_ts = ${now} WHERE source_ts > ${now + SKEW_MS}`.execute(db);
  await sql`UPDATE cohorts SET last_computed = ${now} WHERE last_computed > ${now + SKEW_MS}`.execute(db);
}
