import { type Selectable, sql } from 'kysely';
import { AmpError } from '../errors';
import type { Context } from '../store';
import type { RunsTable } from '../store/schema';

export type RunStatus = 'running' | 'completed' | 'failed' | 'held' | 'rejected' | 'dry_run';

/**
 * A run as printed (`runs show --json`): the row, with its status typed, booleans and the sample
 * parsed. Counters satisfy added + removed = delivered + not_found + failed + pending and
 * members = added + unchanged.
 */
export type RunView = Omit<
  RunsTable,
  'status' | 'dry_run' | 'sample' | 'applied_at' | 'lease_owner' | 'lease_until'
> & {
  status: RunStatus;
  dry_run: boolean;
  sample: unknown;
};

export interface OutcomeCounts {
  delivered: number;
  not_found: number;
  failed: number;
  pending: number;
}

export async function getRunRow(ctx: Context, runId: string): Promise<Selectable<RunsTable>> {
  const row = await ctx.store.db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst();
  if (!row)
    throw new AmpError('not_found', `run ${runId} not found; list runs with \`ampsignal runs list --sync SYNC_ID\``);
  return row;
}

/**
 * The partial index ledger_run_open's condition (migration 005). SQLite uses a partial index only
 * when the query states its condition, so every query of a run's open rows includes it.
 */
export const OPEN_OUTCOME = sql<boolean>`(outcome IS NULL OR outcome <> 'delivered')`;

/**
 * Outcome counters of a run. The ledger rows it last changed that are still open (not sent yet,
 * retrying, not found, failed) are counted through the partial index ledger_run_open; every
 * other change of the run was delivered, or taken over by a later run before it was sent (then
 * the later run's outcome is the user's), so `delivered` is what is left and the counters add
 * up by construction: added + removed = delivered + not_found + failed + pending.
 */
export async function countOutcomes(
  ctx: Context,
  run: { id: string; added: number; removed: number },
): Promise<OutcomeCounts> {
  const rows = await sql<{ outcome: string | null; n: number }>`
    SELECT outcome, COUNT(*) AS n FROM ledger WHERE run_id = ${run.id} AND ${OPEN_OUTCOME} GROUP BY outcome`.execute(
    ctx.store.db,
  );
  const c: OutcomeCounts = { delivered: 0, not_found: 0, failed: 0, pending: 0 };
  for (const r of rows.rows) {
    const n = Number(r.n);
    if (r.outcome === 'not_found') c.not_found += n;
    else if (r.outcome === 'failed') c.failed += n;
    else c.pending += n; // null (not tried yet) or 'retry'
  }
  c.delivered = Math.max(0, Number(run.added) + Number(run.removed) - c.not_found - c.failed - c.pending);
  return c;
}

export function runView(row: Selectable<RunsTable>, live?: OutcomeCounts): RunView {
  let sample: unknown = null;
  if (row.sample) {
    try {
      const s = JSON.parse(row.sample) as Record<string, unknown>;
      delete s.source_ts;
      sample = s;
    } catch {
      sample = null;
    }
  }
  return {
    id: row.id,
    sync_id: row.sync_id,
    status: row.status as RunStatus,
    trigger: row.trigger,
    dry_run: row.dry_run === 1,
    members: Number(row.members),
    added: Number(row.added),
    removed: Number(row.removed),
    unchanged: Number(row.unchanged),
    skipped_anonymous: Number(row.skipped_anonymous),
    delivered: live?.delivered ?? Number(row.delivered),
    not_found: live?.not_found ?? Number(row.not_found),
    failed: live?.failed ?? Number(row.failed),
    pending: live?.pending ?? Number(row.pending),
    requests: Number(row.requests),
    error: row.error,
    hold_reason: row.hold_reason,
    sample,
    started_at: Number(row.started_at),
    finished_at: row.finished_at === null ? null : Number(row.finished_at),
  };
}

/** A run as printed: counters of a run still delivering are read live from the ledger. */
export async function getRunView(ctx: Context, runId: string): Promise<RunView> {
  const row = await getRunRow(ctx, runId);
  const live = row.status === 'running' && row.applied_at !== null ? await countOutcomes(ctx, row) : undefined;
  return runView(row, live);
}

export async function listRuns(ctx: Context, opts: { syncId?: string; limit?: number } = {}): Promise<RunView[]> {
  let q = ctx.store.db
    .selectFrom('runs')
    .selectAll()
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(opts.limit ?? 50);
  if (opts.syncId) q = q.where('sync_id', '=', opts.syncId);
  return (await q.execute()).map((r) => runView(r));
}

export type RecordFilter = 'failed' | 'not_found' | 'skipped' | 'pending' | 'delivered' | 'all';

/** Per-record visibility: the ledger rows this run last changed, with outcome and vendor error. */
export async function runRecords(
  ctx: Context,
  runId: string,
  filter: RecordFilter,
  limit = 1000,
): Promise<
  Array<{ external_id: string; change: 'add' | 'remove'; outcome: string; error: string | null; attempts: number }>
> {
  await getRunRow(ctx, runId);
  let q = ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'outcome', 'error', 'attempts'])
    .where('run_id', '=', runId)
    .orderBy('external_id')
    .limit(limit);
  if (filter === 'failed' || filter === 'not_found' || filter === 'delivered') q = q.where('outcome', '=', filter);
  // Only delivered rows are outside the index: every other filter reads it.
  if (filter !== 'delivered' && filter !== 'all') q = q.where(OPEN_OUTCOME);
  // Anonymous rows never get a ledger row (they have no id to store); "skipped" lists not_found
  // rows, the records that were skipped at OneSignal.
  if (filter === 'skipped') q = q.where('outcome', '=', 'not_found');
  if (filter === 'pending') q = q.where((eb) => eb.or([eb('outcome', 'is', null), eb('outcome', '=', 'retry')]));
  const rows = await q.execute();
  return rows.map((r) => ({
    external_id: r.external_id,
    change: r.desired === 1 ? 'add' : 'remove',
    outcome: r.outcome === null || r.outcome === 'retry' ? 'pending' : r.outcome,
    error: r.error,
    attempts: Number(r.attempts),
  }));
}
