import { z } from 'zod';
import { clientForDestination, getDestination } from '../connectors/onesignal/destinations';
import { toAmpError } from '../errors';
import type { Context } from '../store';
import { deleteSync, forgetSyncs, getSync } from '../sync/syncs';

/**
 * Syncs as a user sees them. Every shell (CLI, API, UI) calls these operations.
 */

export const syncRemovalSchema = z.object({
  id: z.string(),
  /** false: some tag removals are still pending at OneSignal; the sync stays ('deleting') until they are delivered. */
  deleted: z.boolean(),
  /** Users whose tag OneSignal had confirmed and that were removed. */
  removed: z.number().int(),
  /** Confirmed tags whose removal is not delivered yet. */
  pending: z.number().int(),
  /** The segment deleted at OneSignal, if the sync had one. */
  segment_deleted: z.string().nullable(),
  /** Why the segment could not be deleted (the sync is gone all the same). */
  segment_error: z.string().nullable(),
});
export type SyncRemoval = z.infer<typeof syncRemovalSchema>;

/**
 * Deletes a sync the whole way: its tags are removed from the users OneSignal confirmed them on,
 * then its segment is deleted, then our records. Removals that cannot be delivered now keep the
 * sync (status 'deleting'); deleting again finishes it.
 */
export async function removeSync(ctx: Context, id: string): Promise<SyncRemoval> {
  const sync = await getSync(ctx, id);
  const r = await deleteSync(ctx, id);
  const removal: SyncRemoval = { ...r, segment_deleted: null, segment_error: null };
  if (!r.deleted || !sync.segment_id) return removal;
  try {
    const dest = await getDestination(ctx, sync.destination_id);
    await clientForDestination(ctx, dest).deleteSegment(sync.segment_id);
    removal.segment_deleted = sync.segment_id;
  } catch (e) {
    removal.segment_error = toAmpError(e).message;
  }
  return removal;
}

/** Drops syncs and their records without touching OneSignal (a destination deleted without removing its tags). */
export async function deleteSyncsLocally(ctx: Context, ids: string[]): Promise<void> {
  await forgetSyncs(ctx, ids);
}
