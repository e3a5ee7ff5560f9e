import type { Context } from '../store';

/**
 * Work functions lease the rows they claim (ledger rows, outbox events) under the worker id the
 * job runner hands them. When the runner learns that a worker process died, those leases are
 * released at once instead of after their timeout, so surviving workers finish its work now.
 */
export async function releaseLeasesOf(ctx: Context, owners: string[]): Promise<void> {
  if (owners.length === 0) return;
  const db = ctx.store.db;
  await db.updateTable('ledger').set({ lease_owner: null, lease_until: null }).where('lease_owner', 'in', owners).execute();
  await db.updateTable('stream_events').set({ lease_owner: null, lease_until: null }).where('lease_owner', 'in', owners).execute();
}

/** The lease owner id a graphile-worker worker uses in work functions. */
export function graphileLeaseOwner(workerId: string): string {
  return `gw:${workerId}`;
}
