import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { DB } from '../schema';
import type { LedgerOutcome, SettledLedgerOutcome } from './engine';
import { onHandle } from './sqlite-handle';

/**
 * When the wish changed while the request was in flight (a webhook or a run wrote `desired`
 * meanwhile), the answer's outcome is not the row's: a failure leaves the new wish's state as it
 * was; a success makes OneSignal differ from the new wish, so the row is pending again, whatever
 * the new wish's writer concluded from the old `confirmed`. One prepared statement per row in
 * one transaction: SQLite has no cheaper set form and each run costs microseconds.
 */
export function ledgerOutcomesWriter(h: BetterSqlite3.Database) {
  let stmt: BetterSqlite3.Statement | undefined;
  const write = (workerId: string, outcomes: LedgerOutcome[], now: number) => {
    const settled: SettledLedgerOutcome[] = [];
    stmt ??= h.prepare(`UPDATE ledger SET
        confirmed = CASE WHEN @outcome = 'delivered' THEN @sent ELSE confirmed END,
        outcome = CASE WHEN desired = @sent THEN @outcome WHEN @outcome = 'delivered' THEN NULL ELSE outcome END,
        error = CASE WHEN desired = @sent THEN @error WHEN @outcome = 'delivered' THEN NULL ELSE error END,
        attempts = CASE WHEN desired = @sent THEN @attempts WHEN @outcome = 'delivered' THEN 0 ELSE attempts END,
        next_attempt_at = CASE WHEN desired = @sent THEN @next WHEN @outcome = 'delivered' THEN NULL ELSE next_attempt_at END,
        lease_owner = NULL, lease_until = NULL, updated_at = @now
      WHERE sync_id = @sync AND external_id = @ext AND lease_owner = @worker
      RETURNING desired, run_id`);
    for (const o of outcomes) {
      const row = stmt.get({
        outcome: o.outcome,
        sent: o.sent,
        error: o.error,
        attempts: o.attempts,
        next: o.nextAttemptAt,
        now,
        sync: o.syncId,
        ext: o.externalId,
        worker: workerId,
      }) as { desired: number; run_id: string | null } | undefined;
      if (row && Number(row.desired) === o.sent) settled.push({ outcome: o, runId: row.run_id });
    }
    return settled;
  };
  const inTransaction = h.transaction(write);
  return <T extends LedgerOutcome>(
    db: Kysely<DB>,
    workerId: string,
    outcomes: T[],
    now: number,
  ): Promise<Array<SettledLedgerOutcome<T>>> =>
    onHandle(db, () => inTransaction(workerId, outcomes, now) as Array<SettledLedgerOutcome<T>>);
}
