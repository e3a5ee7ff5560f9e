import type { Context } from '../store';
import { releaseLeases } from '../sync/deliver';

/**
 * Work functions lease the rows they claim (ledger rows, outbox events) under the worker id the
 * job runner hands them. When the runner learns that a worker process died, those leases are
 * released at once instead of after their timeout, so surviving workers finish its work now.
 * Only claimable rows carry leases (pending ledger rows, pending events), so the release walks the
 * pending-rows indexes destination by destination and stream by stream, never a whole table.
 */
export async function releaseLeasesOf(ctx: Context, owners: string[]): Promise<void> {
  if (owners.length === 0) return;
  const db = ctx.store.db;
  for (const { id } of await db.selectFrom('destinations').select('id').execute()) await releaseLeases(ctx, id, owners);
  for (const { id } of await db.selectFrom('streams').select('id').execute()) {
    await db
      .updateTable('stream_events')
      .set({ lease_owner: null, lease_until: null })
      .where('stream_id', '=', id)
      .where('status', '=', 'pending')
      .where('lease_owner', 'in', owners)
      .execute();
  }
}

/** The lease owner id a graphile-worker worker uses in work functions. */
export function graphileLeaseOwner(workerId: string): string {
  return `gw:${workerId}`;
}
