import { type ExpressionBuilder, sql } from 'kysely';
import type { Context } from '../store';
import type { DB } from '../store/schema';

/**
 * Work functions lease the rows they claim (ledger rows, outbox events) under the worker id the
 * job runner hands them: deliveries as that id, forwarders as that id and a per-round suffix
 * (`id:lease_…`). When the runner learns that a worker process died, those leases are released
 * at once instead of when they lapse, so surviving workers finish its work now.
 */
export async function releaseLeasesOf(ctx: Context, owners: string[]): Promise<void> {
  if (owners.length === 0) return;
  const db = ctx.store.db;
  await db
    .updateTable('ledger')
    .set({ lease_owner: null, lease_until: null })
    .where('lease_owner', 'in', owners)
    .execute();
  // A forwarder's owner has a suffix, which no index on the owner finds in both databases; stream
  // by stream, the pending-events index does.
  const owned = (eb: ExpressionBuilder<DB, 'stream_events'>) =>
    eb.or(
      owners.flatMap((o) => [
        eb('lease_owner', '=', o),
        eb('lease_owner', 'like', sql<string>`${`${escapeLike(o)}:%`} ESCAPE '\\'`),
      ]),
    );
  for (const { id } of await db.selectFrom('streams').select('id').execute()) {
    await db
      .updateTable('stream_events')
      .set({ lease_owner: null, lease_until: null })
      .where('stream_id', '=', id)
      .where('status', '=', 'pending')
      .where(owned)
      .execute();
  }
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The lease owner id a graphile-worker worker uses in work functions. */
export function graphileLeaseOwner(workerId: string): string {
  return `gw:${workerId}`;
}
