import { type CohortView, listCohorts } from '../../app/cohorts';
import { type DeadLetterView, listDeadLetters } from '../../app/dead-letters';
import { type DestinationView, listDestinations, showDestination } from '../../app/destinations';
import { listStreams, type StreamView, showStream } from '../../app/streams';
import { listSyncs, type SyncView, showSync } from '../../app/syncs';
import type { Context } from '../../store';
import { getRunView, type RunView, runView } from '../../sync/runs';

/**
 * Read models shared by the admin API and the web UI. Every query names its columns so an
 * encrypted key or secret column can never leak into a response by a `select *`.
 */

/** A destination as the app layer shows it (never the key; with its pending ledger rows). */
export type DestinationRead = DestinationView;

export const readDestinations = (ctx: Context): Promise<DestinationRead[]> => listDestinations(ctx);

export const readDestination = (ctx: Context, id: string): Promise<DestinationRead> => showDestination(ctx, id);

/** A cohort with the syncs that use it (src/app/cohorts.ts). */
export type CohortRead = CohortView;

export const readCohorts = (ctx: Context): Promise<CohortRead[]> => listCohorts(ctx);

/** A sync as the app layer shows it (names for display, the newest run). */
export type SyncRead = SyncView;

export const readSyncs = (ctx: Context): Promise<SyncRead[]> => listSyncs(ctx);

export const readSync = (ctx: Context, id: string): Promise<SyncRead> => showSync(ctx, id);

/** The engine's run view, exactly what `runs show --json` prints. */
export type RunRead = RunView;

export async function readRunsOfSync(
  ctx: Context,
  syncId: string,
  opts: { limit: number; before?: number },
): Promise<RunRead[]> {
  await readSync(ctx, syncId);
  let q = ctx.store.db
    .selectFrom('runs')
    .selectAll()
    .where('sync_id', '=', syncId)
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(opts.limit);
  if (opts.before !== undefined) q = q.where('started_at', '<', opts.before);
  return (await q.execute()).map((r) => runView(r));
}

/** One run; the engine's view, whose counters are live from the ledger while it delivers. */
export async function readRun(ctx: Context, id: string): Promise<RunRead> {
  return getRunView(ctx, id);
}

/** A stream as the app layer shows it (never the key or secret; with its counters). */
export type StreamRead = StreamView;

export const readStreams = (ctx: Context): Promise<StreamRead[]> => listStreams(ctx);

export const readStream = (ctx: Context, id: string): Promise<StreamRead> => showStream(ctx, id);

/** The event pipeline's own dead-letter view (`dead-letters list --json` prints the same). */
export type DeadLetterRead = DeadLetterView;

export const readDeadLetters = (
  ctx: Context,
  opts: { streamId?: string; limit: number; before?: number },
): Promise<DeadLetterRead[]> => listDeadLetters(ctx, { stream: opts.streamId, limit: opts.limit, before: opts.before });
