import { type Selectable, sql } from 'kysely';
import { AmpError } from '../errors';
import type { Context } from '../store';
import { type Heartbeat, keepRenewing, LEASE_MS } from '../store/leases';
import type { RunsTable } from '../store/schema';

export type RunStatus = 'running' | 'completed' | 'failed' | 'held' | 'rejected' | 'dry_run';

/** The public JSON of a run (`runs show --json`). Counters satisfy
 *  added + removed = delivered + not_found + failed + pending and members = added + unchanged. */
/** A run as printed (`runs show --json`): the row, with its status typed, booleans and the sample parsed. */
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

/**
 * Writes a run's counters from its ledger rows. A running run becomes `completed` once nothing
 * is pending; a completed run that still had pending rows gets fresh counters. Guarded on the
 * status read, so a concurrent finalizer can only repeat the same write.
 */
export async function finalizeRun(
  ctx: Context,
  runId: string,
  opts: { force?: boolean; error?: string } = {},
): Promise<void> {
  const row = await getRunRow(ctx, runId);
  if (row.applied_at === null) return;
  if (row.status !== 'running' && !(row.status === 'completed' && Number(row.pending) > 0)) return;
  const c = await countOutcomes(ctx, row);
  const done = c.pending === 0 || opts.force === true;
  const status = opts.error ? 'failed' : row.status === 'running' && done ? 'completed' : row.status;
  await ctx.store.db
    .updateTable('runs')
    .set({
      delivered: c.delivered,
      not_found: c.not_found,
      failed: c.failed,
      pending: c.pending,
      status,
      ...(opts.error ? { error: opts.error } : {}),
      ...(status !== 'running' && row.finished_at === null ? { finished_at: Date.now() } : {}),
    })
    .where('id', '=', runId)
    .where('status', '=', row.status)
    .execute();
}

/** Finalizes every applied, unfinished run of the destination's syncs (after a delivery pass). */
export async function finalizeRunsOfDestination(ctx: Context, destinationId: string): Promise<void> {
  const runs = await ctx.store.db
    .selectFrom('runs')
    .innerJoin('syncs', 'syncs.id', 'runs.sync_id')
    .select(['runs.id'])
    .where('syncs.destination_id', '=', destinationId)
    .where('runs.applied_at', 'is not', null)
    .where((eb) =>
      eb.or([
        eb('runs.status', '=', 'running'),
        eb.and([eb('runs.status', '=', 'completed'), eb('runs.pending', '>', 0)]),
      ]),
    )
    .execute();
  for (const r of runs) await finalizeRun(ctx, r.id);
}

/**
 * A run is leased (LEASE_MS) by the process working it: from its start until its diff is applied
 * or it ends, and through the delivery when that process delivers it too (the CLI). The lease is
 * renewed while the process lives; a lapsed one means the process died, and any process closes
 * the run (closeAbandonedRuns).
 */
export function holdRunLease(ctx: Context, runId: string, owner: string): Heartbeat {
  return keepRenewing(`run ${runId}`, LEASE_MS, () =>
    ctx.store.db
      .updateTable('runs')
      .set({ lease_until: Date.now() + LEASE_MS })
      .where('id', '=', runId)
      .where('lease_owner', '=', owner)
      .execute(),
  );
}

export async function releaseRunLease(ctx: Context, runId: string, owner: string): Promise<void> {
  await ctx.store.db
    .updateTable('runs')
    .set({ lease_owner: null, lease_until: null })
    .where('id', '=', runId)
    .where('lease_owner', '=', owner)
    .execute();
}

export interface ClosedRuns {
  /** Runs that died before applying their diff: failed, their staging dropped. */
  failed: string[];
  /** Runs that died delivering their applied diff: finalized with what is still pending. */
  finalized: string[];
  /** Destinations of the finalized runs, whose pending rows need a delivery. */
  destinationIds: string[];
}

/**
 * Closes runs whose process died (their lease lapsed): one cheap indexed query when nothing is
 * lapsed, so every process runs it, the CLI when it opens the database and serve/worker every
 * few seconds. A run that died before applying its diff changed nothing in the ledger: it fails,
 * and the next scheduled or manual run redoes the pull. A run that died delivering is finalized
 * like a delivery pass that ended with rows pending (later passes refresh its counters). Each
 * close is guarded on the lapsed lease, so a run whose process renews it meanwhile is left alone.
 */
export async function closeAbandonedRuns(ctx: Context, now = Date.now()): Promise<ClosedRuns> {
  const db = ctx.store.db;
  const lapsed = await db
    .selectFrom('runs')
    .innerJoin('syncs', 'syncs.id', 'runs.sync_id')
    .select(['runs.id', 'runs.status', 'runs.applied_at', 'syncs.destination_id'])
    .where('runs.lease_until', '<', now)
    .execute();
  const closed: ClosedRuns = { failed: [], finalized: [], destinationIds: [] };
  for (const r of lapsed) {
    if (r.status === 'running' && r.applied_at === null) {
      if (await failUnapplied(ctx, r.id, now)) closed.failed.push(r.id);
      continue;
    }
    const freed = await db
      .updateTable('runs')
      .set({ lease_owner: null, lease_until: null })
      .where('id', '=', r.id)
      .where('lease_until', '<', now)
      .executeTakeFirst();
    if (Number(freed.numUpdatedRows) === 0 || r.status !== 'running') continue;
    await finalizeRun(ctx, r.id, { force: true });
    closed.finalized.push(r.id);
    if (!closed.destinationIds.includes(r.destination_id)) closed.destinationIds.push(r.destination_id);
  }
  return closed;
}

async function failUnapplied(ctx: Context, runId: string, now: number): Promise<boolean> {
  return ctx.store.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('runs')
      .set({
        status: 'failed',
        error: 'abandoned: the process running it stopped before the diff was applied; the next run redoes it',
        finished_at: now,
        lease_owner: null,
        lease_until: null,
      })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .where('applied_at', 'is', null)
      .where('lease_until', '<', now)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) return false;
    await trx.deleteFrom('staging').where('run_id', '=', runId).execute();
    return true;
  });
}
