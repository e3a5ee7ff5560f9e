import { type Kysely, sql } from 'kysely';
import type { DB } from '../schema';
import type { LedgerOutcome, SettledLedgerOutcome } from './engine';

/**
 * The same rule as ledger-outcomes.sqlite.ts (an answer to an older wish re-opens the row or
 * leaves it), as ONE statement for the whole batch: the outcomes arrive as arrays joined with
 * unnest(), so a batch costs one round trip and each row is found by the ledger's primary key.
 */
export async function writeLedgerOutcomesPg<T extends LedgerOutcome>(
  db: Kysely<DB>,
  workerId: string,
  outcomes: T[],
  now: number,
): Promise<Array<SettledLedgerOutcome<T>>> {
  if (outcomes.length === 0) return [];
  const written = await sql<{
    sync_id: string;
    external_id: string;
    desired: number;
    run_id: string | null;
  }>`UPDATE ledger AS l SET
      confirmed = CASE WHEN v.outcome = 'delivered' THEN v.sent ELSE l.confirmed END,
      outcome = CASE WHEN l.desired = v.sent THEN v.outcome WHEN v.outcome = 'delivered' THEN NULL ELSE l.outcome END,
      error = CASE WHEN l.desired = v.sent THEN v.error WHEN v.outcome = 'delivered' THEN NULL ELSE l.error END,
      attempts = CASE WHEN l.desired = v.sent THEN v.attempts WHEN v.outcome = 'delivered' THEN 0 ELSE l.attempts END,
      next_attempt_at = CASE WHEN l.desired = v.sent THEN v.next_at WHEN v.outcome = 'delivered' THEN NULL ELSE l.next_attempt_at END,
      lease_owner = NULL, lease_until = NULL, updated_at = ${now}
    FROM unnest(${outcomes.map((o) => o.syncId)}::text[], ${outcomes.map((o) => o.externalId)}::text[], ${outcomes.map((o) => o.sent)}::int[],
      ${outcomes.map((o) => o.outcome)}::text[], ${outcomes.map((o) => o.error)}::text[], ${outcomes.map((o) => o.attempts)}::int[],
      ${outcomes.map((o) => o.nextAttemptAt)}::bigint[]) AS v(sync_id, external_id, sent, outcome, error, attempts, next_at)
    WHERE l.sync_id = v.sync_id AND l.external_id = v.external_id AND l.lease_owner = ${workerId}
    RETURNING l.sync_id, l.external_id, l.desired, l.run_id`.execute(db);
  const byRow = new Map(outcomes.map((o) => [`${o.syncId}\u0000${o.externalId}`, o]));
  const settled: Array<SettledLedgerOutcome<T>> = [];
  for (const w of written.rows) {
    const o = byRow.get(`${w.sync_id}\u0000${w.external_id}`);
    if (o && Number(w.desired) === o.sent) settled.push({ outcome: o, runId: w.run_id });
  }
  return settled;
}
