import { type Selectable, sql } from 'kysely';
import { AmpError } from '../errors';
import type { Context } from '../store';
import type { RunsTable } from '../store/schema';

export type RunStatus = 'running' | 'completed' | 'failed' | 'held' | 'rejected' | 'dry_run';

/**
 * A run as printed (`runs show --json`): the row, with its status typed, booleans and the sample
 * parsed. Counters satisfy added + removed + retried = delivered + not_found + failed + pending and
 * members = added + unchanged.
 */
export type RunView = Omit<
  RunsTable,
  'status' | 'dry_run' | 'sample' | 'applied_at' | 'lease_owner' | 'lease_until' | 'retried'
> & {
  retried: number;
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
 * Outcome counters of a run. not_found and failed are its settled records, added as they were
 * written (run-record.ts addDeliveryCounts), so a later run retrying those users never changes
 * them. Pending are the ledger rows it last changed that are not sent yet or retrying, counted
 * through the partial index ledger_run_open. Every other change of the run was delivered, or
 * taken over by a later run before it was sent (then the later run's outcome is the user's), so
 * `delivered` is what is left and the counters add up by construction:
 * added + removed + retried = delivered + not_found + failed + pending.
 */
export async function countOutcomes(
  ctx: Context,
  run: { id: string; added: number; removed: number; retried: number; not_found: number; failed: number },
): Promise<OutcomeCounts> {
  const r = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM ledger WHERE run_id = ${run.id} AND ${OPEN_OUTCOME}
      AND (outcome IS NULL OR outcome = 'retry')`.execute(ctx.store.db);
  const pending = Number(r.rows[0]?.n ?? 0);
  const notFound = Number(run.not_found);
  const failed = Number(run.failed);
  const total = Number(run.added) + Number(run.removed) + Number(run.retried);
  return { delivered: Math.max(0, total - notFound - failed - pending), not_found: notFound, failed, pending };
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
    retried: Number(row.retried),
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

export async function listRuns(
  ctx: Context,
  opts: { syncId?: string; limit?: number; before?: number } = {},
): Promise<RunView[]> {
  let q = ctx.store.db
    .selectFrom('runs')
    .selectAll()
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(opts.limit ?? 50);
  if (opts.syncId) q = q.where('sync_id', '=', opts.syncId);
  if (opts.before !== undefined) q = q.where('started_at', '<', opts.before);
  return (await q.execute()).map((r) => runView(r));
}

/** Users whose delivery for this run failed for good and who still differ from OneSignal (what `runs retry` re-queues). */
export async function countFailedUsers(ctx: Context, runId: string): Promise<number> {
  const r = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM ledger WHERE run_id = ${runId} AND ${OPEN_OUTCOME}
      AND outcome = 'failed' AND desired <> confirmed`.execute(ctx.store.db);
  return Number(r.rows[0]?.n ?? 0);
}
