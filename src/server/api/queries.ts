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

const num = (v: unknown): number => Number(v ?? 0);

/** A destination as the app layer shows it (never the key; with its pending ledger rows). */
export type DestinationRead = DestinationView;

export const readDestinations = (ctx: Context): Promise<DestinationRead[]> => listDestinations(ctx);

export const readDestination = (ctx: Context, id: string): Promise<DestinationRead> => showDestination(ctx, id);

export interface CohortRead {
  id: string;
  source_id: string | null;
  name: string;
  origin: string;
  size: number | null;
  last_computed: number | null;
  created_at: number;
  updated_at: number;
  sync_ids: string[];
}

export async function readCohorts(ctx: Context): Promise<CohortRead[]> {
  const rows = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'source_id', 'name', 'origin', 'size', 'last_computed', 'created_at', 'updated_at'])
    .orderBy('name')
    .orderBy('id')
    .execute();
  const syncs = await ctx.store.db.selectFrom('syncs').select(['id', 'cohort_id']).orderBy('created_at').execute();
  const byCohort = new Map<string, string[]>();
  for (const s of syncs) byCohort.set(s.cohort_id, [...(byCohort.get(s.cohort_id) ?? []), s.id]);
  return rows.map((r) => ({
    ...r,
    size: r.size === null ? null : num(r.size),
    last_computed: r.last_computed === null ? null : num(r.last_computed),
    created_at: num(r.created_at),
    updated_at: num(r.updated_at),
    sync_ids: byCohort.get(r.id) ?? [],
  }));
}

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
