import { type DeadLetterView, listDeadLetters } from '../../app/dead-letters';
import { type DestinationView, listDestinations, showDestination } from '../../app/destinations';
import { listStreams, type StreamView, showStream } from '../../app/streams';
import { AmpError } from '../../errors';
import type { Context } from '../../store';
import { getRunView, OPEN_OUTCOME, type RunView, runView } from '../../sync/runs';
import type { SyncView } from '../../sync/syncs';

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

/** The engine's sync view, with names for display and the newest run (in progress or not). */
export interface SyncRead extends Omit<SyncView, 'last_run_id'> {
  cohort_name: string | null;
  destination_name: string | null;
  last_run: { id: string; status: string; started_at: number; finished_at: number | null } | null;
}

async function querySyncs(ctx: Context, id?: string): Promise<SyncRead[]> {
  let q = ctx.store.db
    .selectFrom('syncs')
    .leftJoin('cohorts', 'cohorts.id', 'syncs.cohort_id')
    .leftJoin('destinations', 'destinations.id', 'syncs.destination_id')
    .select([
      'syncs.id',
      'syncs.cohort_id',
      'cohorts.name as cohort_name',
      'syncs.destination_id',
      'destinations.name as destination_name',
      'syncs.cadence',
      'syncs.tag_key',
      'syncs.tag_value',
      'syncs.external_id_property',
      'syncs.segment_id',
      'syncs.segment_error',
      'syncs.guard_threshold',
      'syncs.status',
      'syncs.next_run_at',
      'syncs.created_at',
      // The newest run by start time, rather than last_run_id, so a run still in progress shows.
      (eb) =>
        eb
          .selectFrom('runs')
          .select('runs.id')
          .whereRef('runs.sync_id', '=', 'syncs.id')
          .orderBy('runs.started_at', 'desc')
          .orderBy('runs.id', 'desc')
          .limit(1)
          .as('last_run_id'),
    ])
    .orderBy('syncs.created_at')
    .orderBy('syncs.id');
  if (id !== undefined) q = q.where('syncs.id', '=', id);
  const rows = await q.execute();
  const runIds = rows.map((r) => r.last_run_id).filter((x): x is string => typeof x === 'string');
  const runs = runIds.length
    ? await ctx.store.db
        .selectFrom('runs')
        .select(['id', 'status', 'started_at', 'finished_at'])
        .where('id', 'in', runIds)
        .execute()
    : [];
  const runById = new Map(runs.map((r) => [r.id, r]));
  return rows.map(({ last_run_id, ...r }) => {
    const run = last_run_id ? runById.get(last_run_id) : undefined;
    return {
      ...r,
      guard_threshold: num(r.guard_threshold),
      next_run_at: r.next_run_at === null ? null : num(r.next_run_at),
      created_at: num(r.created_at),
      last_run: run
        ? {
            id: run.id,
            status: run.status,
            started_at: num(run.started_at),
            finished_at: run.finished_at === null ? null : num(run.finished_at),
          }
        : null,
    };
  });
}

export const readSyncs = (ctx: Context): Promise<SyncRead[]> => querySyncs(ctx);

export async function readSync(ctx: Context, id: string): Promise<SyncRead> {
  const [row] = await querySyncs(ctx, id);
  if (!row) throw new AmpError('not_found', `no sync with id ${id}`);
  return row;
}

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
