import { type Kysely, sql } from 'kysely';
import { AmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { isUniqueViolation } from '../store/constraints';
import { type Heartbeat, keepRenewing, LEASE_MS } from '../store/leases';
import type { DB } from '../store/schema';
import { countOutcomes, getRunRow, OPEN_OUTCOME } from './runs';

/**
 * The run record (`runs`): the one module that writes it. A run is opened running and leased by
 * the process working it; its snapshot's size, then its diff (applied, or held for a person), its
 * delivery's requests and outcome counters are recorded as they become known; it ends completed,
 * failed, held, rejected or as a dry run. Reading runs is runs.ts.
 */

/** The run a process works: its id and the lease that makes its row this process's to write. */
export interface RunHandle {
  runId: string;
  lease: string;
  startedAt: number;
}

/**
 * A diff's counters as the run records them: `adds` and `removes` are every row it changes,
 * `retried` those of them that re-assert an earlier not_found/failed change, recorded apart, so
 * added + removed + retried = the changes to deliver.
 */
export interface DiffRecord {
  members: number;
  adds: number;
  removes: number;
  retried?: { adds: number; removes: number };
}

/** The run's change counters from a diff: joins, leaves and retries apart. */
function changeCounters(d: DiffRecord) {
  const ra = d.retried?.adds ?? 0;
  const rr = d.retried?.removes ?? 0;
  // A retried add was a member before and still is: it counts as unchanged membership, so
  // members = added + unchanged still holds.
  return { added: d.adds - ra, removed: d.removes - rr, retried: ra + rr, unchanged: d.members - (d.adds - ra) };
}

const ZERO_COUNTERS = {
  members: 0,
  added: 0,
  removed: 0,
  retried: 0,
  unchanged: 0,
  skipped_anonymous: 0,
  delivered: 0,
  not_found: 0,
  failed: 0,
  pending: 0,
  requests: 0,
};

/** What a run is opened with: its sync, what started it, whether it only reports. */
interface RunOpening {
  syncId: string;
  trigger: string;
  dryRun: boolean;
}

/**
 * Opens a running run of the sync, leased by this process, and makes it the sync's last run.
 * A sync has one run at work at a time (index runs_one_at_work): while another holds its lease,
 * this one is refused; a lease that lapsed (its process died) is closed first and the run opens.
 */
export async function openRun(ctx: Context, r: RunOpening): Promise<RunHandle> {
  const run: RunHandle = { runId: newId('run'), lease: newId('lease'), startedAt: Date.now() };
  try {
    await insertRun(ctx, r, run);
  } catch (e) {
    if (!isUniqueViolation(e)) throw e;
    await closeAbandonedRuns(ctx);
    try {
      await insertRun(ctx, r, run);
    } catch (again) {
      if (isUniqueViolation(again)) await refuseRunAtWork(ctx, r.syncId);
      throw again;
    }
  }
  await ctx.store.db.updateTable('syncs').set({ last_run_id: run.runId }).where('id', '=', r.syncId).execute();
  return run;
}

async function insertRun(ctx: Context, r: RunOpening, run: RunHandle): Promise<void> {
  await ctx.store.db
    .insertInto('runs')
    .values({
      id: run.runId,
      sync_id: r.syncId,
      status: 'running',
      trigger: r.trigger,
      dry_run: r.dryRun ? 1 : 0,
      ...ZERO_COUNTERS,
      error: null,
      hold_reason: null,
      sample: null,
      started_at: run.startedAt,
      finished_at: null,
      applied_at: null,
      lease_owner: run.lease,
      lease_until: run.startedAt + LEASE_MS,
    })
    .execute();
}

async function refuseRunAtWork(ctx: Context, syncId: string): Promise<never> {
  const atWork = await ctx.store.db
    .selectFrom('runs')
    .select(['id', 'trigger', 'started_at'])
    .where('sync_id', '=', syncId)
    .where('lease_owner', 'is not', null)
    .where('dry_run', '=', 0)
    .executeTakeFirst();
  const since = atWork ? `, ${atWork.trigger}, started ${new Date(Number(atWork.started_at)).toISOString()}` : '';
  throw new AmpError(
    'conflict',
    `sync ${syncId} already has a run at work (${atWork?.id ?? 'just finished'}${since}); wait for it to finish, then run again`,
    { details: { run_id: atWork?.id ?? null } },
  );
}

/**
 * A run is leased (LEASE_MS) by the process working it: from its start until its diff is applied
 * or it ends, and through the delivery when that process delivers it too (the CLI). The lease is
 * renewed while the process lives; a lapsed one means the process died, and any process closes
 * the run (closeAbandonedRuns).
 */
export function holdRunLease(ctx: Context, run: RunHandle): Heartbeat {
  return keepRenewing(`run ${run.runId}`, LEASE_MS, () =>
    ctx.store.db
      .updateTable('runs')
      .set({ lease_until: Date.now() + LEASE_MS })
      .where('id', '=', run.runId)
      .where('lease_owner', '=', run.lease)
      .execute(),
  );
}

export async function releaseRunLease(ctx: Context, run: RunHandle): Promise<void> {
  await ctx.store.db
    .updateTable('runs')
    .set({ lease_owner: null, lease_until: null })
    .where('id', '=', run.runId)
    .where('lease_owner', '=', run.lease)
    .execute();
}

/**
 * The run's row while it is still this process's to write: running and leased by its lease. A run
 * whose lease lapsed (its process stalled past it) was closed by another process; it must not be
 * applied or decided after all.
 */
function stillOurs(db: Kysely<DB>, run: RunHandle) {
  return db
    .updateTable('runs')
    .where('id', '=', run.runId)
    .where('status', '=', 'running')
    .where('lease_owner', '=', run.lease);
}

async function assertOurs(
  update: { executeTakeFirst(): Promise<{ numUpdatedRows: bigint }> },
  run: RunHandle,
): Promise<void> {
  const r = await update.executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) {
    throw new AmpError(
      'run_state',
      `run ${run.runId} was closed by another process while this one worked it (its lease lapsed); nothing of it was applied`,
    );
  }
}

/** The snapshot is staged: its size, and the members skipped for want of an id. */
export async function recordSnapshot(
  ctx: Context,
  run: RunHandle,
  s: { members: number; skippedAnonymous: number },
): Promise<void> {
  await stillOurs(ctx.store.db, run).set({ members: s.members, skipped_anonymous: s.skippedAnonymous }).execute();
}

/** A dry run's report, which ends it: nothing is sent, so the would-be changes count as pending. */
export async function recordDryRun(
  ctx: Context,
  run: RunHandle,
  r: DiffRecord & { skippedAnonymous: number; sample: unknown; wouldHold?: string },
): Promise<void> {
  await stillOurs(ctx.store.db, run)
    .set({
      status: 'dry_run',
      // What the guard would say of the real run, so a dry run warns of a hold before it happens.
      hold_reason: r.wouldHold ? `a real run would be held for approval: ${r.wouldHold}` : null,
      members: r.members,
      ...changeCounters(r),
      skipped_anonymous: r.skippedAnonymous,
      pending: r.adds + r.removes,
      sample: JSON.stringify(r.sample),
      finished_at: Date.now(),
    })
    .execute();
}

/**
 * The diff reached the ledger, in the caller's transaction: the run now delivers what it changed.
 * `settledNotFound`: changes the diff settled itself (records.ts recordSettledByDiff).
 */
export async function recordApplied(
  trx: Kysely<DB>,
  run: RunHandle,
  d: DiffRecord & { settledNotFound?: number },
): Promise<void> {
  await assertOurs(
    stillOurs(trx, run).set({
      members: d.members,
      ...changeCounters(d),
      not_found: d.settledNotFound ?? 0,
      pending: 0,
      applied_at: Date.now(),
    }),
    run,
  );
}

/**
 * The guard held the diff, in the caller's transaction: nothing reached the ledger, so the held
 * changes are all pending until a person approves. The sample keeps the snapshot's source time,
 * which approve applies the diff at.
 */
export async function recordHeld(
  trx: Kysely<DB>,
  run: RunHandle,
  h: DiffRecord & { reason: string; sample: object; sourceTs: number },
): Promise<void> {
  await assertOurs(
    stillOurs(trx, run).set({
      status: 'held',
      hold_reason: h.reason,
      members: h.members,
      ...changeCounters(h),
      pending: h.adds + h.removes,
      sample: JSON.stringify({ ...h.sample, source_ts: h.sourceTs }),
      finished_at: Date.now(),
    }),
    run,
  );
}

/** The source time a held run's snapshot had, to apply it at when approved. */
export function heldSourceTs(row: { sample: string | null; started_at: number }): number {
  const sample = JSON.parse(row.sample ?? '{}') as { source_ts?: number };
  return Number(sample.source_ts ?? row.started_at);
}

/** `runs approve`: takes a held run back to running, leased by this process; refuses any other. */
export async function reopenHeldRun(ctx: Context, runId: string): Promise<RunHandle> {
  const run: RunHandle = { runId, lease: newId('lease'), startedAt: Date.now() };
  const r = await ctx.store.db
    .updateTable('runs')
    .set({
      status: 'running',
      hold_reason: null,
      finished_at: null,
      lease_owner: run.lease,
      lease_until: Date.now() + LEASE_MS,
    })
    .where('id', '=', runId)
    .where('status', '=', 'held')
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw notHeld(await getRunRow(ctx, runId), 'approved');
  return run;
}

/** `runs reject`: ends a held run; the ledger was never touched. */
export async function rejectHeldRun(ctx: Context, runId: string): Promise<void> {
  const r = await ctx.store.db
    .updateTable('runs')
    // Nothing of a rejected run will be sent: its held changes are no longer pending.
    .set({ status: 'rejected', pending: 0, finished_at: Date.now() })
    .where('id', '=', runId)
    .where('status', '=', 'held')
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) throw notHeld(await getRunRow(ctx, runId), 'rejected');
}

/** The run statuses whose failed users can be retried: it ended, and its diff reached the ledger. */
const RETRYABLE_STATUSES = ['completed', 'failed'];

/**
 * `runs retry`: the run's users whose delivery failed for good (ledger rows it last changed that
 * settled `failed` and still differ from OneSignal) are pending again, and the run is running
 * again, leased by this process, until a delivery settles them. In one transaction with the run's
 * counters: its failed count gives them back and its pending count takes them, so the counters
 * still add up (their failed records stay in the history; the retry appends new ones). Refused
 * for a run that has not finished or has no such users. Rows a later run took over are that
 * run's and stay as they are.
 */
export async function reopenFailedRows(ctx: Context, runId: string): Promise<{ run: RunHandle; requeued: number }> {
  const run: RunHandle = { runId, lease: newId('lease'), startedAt: Date.now() };
  const requeued = await ctx.store.db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('runs')
      .select(['id', 'status', 'applied_at'])
      .where('id', '=', runId)
      .executeTakeFirst();
    if (!row)
      throw new AmpError('not_found', `run ${runId} not found; list runs with \`ampsignal runs list --sync SYNC_ID\``);
    if (!RETRYABLE_STATUSES.includes(row.status) || row.applied_at === null)
      throw new AmpError(
        'run_state',
        row.status === 'running'
          ? `run ${runId} is still running; retry its failed users once it has finished`
          : `run ${runId} is ${row.status}${row.status === 'failed' ? ' before its changes reached the ledger' : ''}; only a finished run that delivered can have failed users to retry`,
      );
    const now = Date.now();
    const r = await trx
      .updateTable('ledger')
      .set({ outcome: null, error: null, attempts: 0, next_attempt_at: null, updated_at: now })
      .where('run_id', '=', runId)
      .where(OPEN_OUTCOME)
      .where('outcome', '=', 'failed')
      .whereRef('desired', '<>', 'confirmed')
      .executeTakeFirst();
    const n = Number(r.numUpdatedRows);
    if (n === 0) throw new AmpError('run_state', `run ${runId} has no failed users to retry`);
    await trx
      .updateTable('runs')
      .set({
        status: 'running',
        finished_at: null,
        failed: sql`CASE WHEN failed > ${n} THEN failed - ${n} ELSE 0 END`,
        pending: sql`pending + ${n}`,
        lease_owner: run.lease,
        lease_until: now + LEASE_MS,
      })
      .where('id', '=', runId)
      .where('status', '=', row.status)
      .execute();
    return n;
  });
  return { run, requeued };
}

function notHeld(row: { id: string; status: string }, what: string): AmpError {
  return new AmpError('run_state', `run ${row.id} is ${row.status}; only a held run can be ${what}`);
}

/**
 * Per run: vendor requests that carried its changes, and its records that settled not_found or
 * failed (delivered is what is left: see finalizeRun). Added by whichever process delivered, in
 * the transaction that writes the outcomes, so they count each answer once.
 */
export type DeliveryCounts = Map<string, { requests: number; notFound: number; failed: number }>;

/** DeliveryCounts inside the caller's transaction. */
export async function addDeliveryCounts(trx: Kysely<DB>, counts: DeliveryCounts): Promise<void> {
  for (const [id, c] of counts) {
    await trx
      .updateTable('runs')
      .set({
        requests: sql`requests + ${c.requests}`,
        not_found: sql`not_found + ${c.notFound}`,
        failed: sql`failed + ${c.failed}`,
      })
      .where('id', '=', id)
      .execute();
  }
}

/**
 * Writes a run's counters from its ledger rows, and its end: the one place a run is finalized.
 * - `failed`: a running run ends failed with this message (with counters if its diff was applied);
 * - otherwise an applied running run becomes `completed` once nothing is pending (or at once with
 *   `force`: a pass ended with rows still pending, whose later passes refresh its counters), and
 *   a completed run that still had pending rows gets fresh counters.
 * Guarded on the status read, so a concurrent finalizer can only repeat the same write, and a run
 * another process closed meanwhile keeps what it says.
 */
export async function finalizeRun(
  ctx: Context,
  runId: string,
  end: { force?: boolean; failed?: string } = {},
): Promise<void> {
  const row = await getRunRow(ctx, runId);
  const applied = row.applied_at !== null;
  const refreshable = row.status === 'running' || (row.status === 'completed' && Number(row.pending) > 0);
  if (end.failed !== undefined ? row.status !== 'running' : !applied || !refreshable) return;
  const c = applied ? await countOutcomes(ctx, row) : undefined;
  const done = end.force === true || c?.pending === 0;
  const status = end.failed !== undefined ? 'failed' : row.status === 'running' && done ? 'completed' : row.status;
  await ctx.store.db
    .updateTable('runs')
    .set({
      // not_found and failed are added as records settle (addDeliveryCounts), never written here.
      ...(c ? { delivered: c.delivered, pending: c.pending } : {}),
      status,
      ...(end.failed !== undefined ? { error: end.failed } : {}),
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

/** Drops every run of a sync that is being deleted, in the caller's transaction. */
export async function deleteRunsOfSync(trx: Kysely<DB>, syncId: string): Promise<void> {
  await trx.deleteFrom('runs').where('sync_id', '=', syncId).execute();
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
  const lapsed = await ctx.store.db
    .selectFrom('runs')
    .innerJoin('syncs', 'syncs.id', 'runs.sync_id')
    .select(['runs.id', 'runs.status', 'runs.applied_at', 'syncs.destination_id'])
    .where('runs.lease_until', '<', now)
    .execute();
  const closed: ClosedRuns = { failed: [], finalized: [], destinationIds: [] };
  for (const r of lapsed) {
    if (r.status === 'running' && r.applied_at === null) {
      if (await failUnapplied(ctx, r.id, now)) closed.failed.push(r.id);
    } else if ((await freeLapsedLease(ctx, r.id, now)) && r.status === 'running') {
      await finalizeRun(ctx, r.id, { force: true });
      closed.finalized.push(r.id);
      if (!closed.destinationIds.includes(r.destination_id)) closed.destinationIds.push(r.destination_id);
    }
  }
  // A dead process's snapshot tables, kept by name (PostgreSQL), whether it died before its diff
  // or after applying it and before dropping them: no closed run reads them again.
  for (const id of [...closed.failed, ...closed.finalized]) await ctx.store.engine.dropStagedSnapshot(id);
  return closed;
}

async function freeLapsedLease(ctx: Context, runId: string, now: number): Promise<boolean> {
  const freed = await ctx.store.db
    .updateTable('runs')
    .set({ lease_owner: null, lease_until: null })
    .where('id', '=', runId)
    .where('lease_until', '<', now)
    .executeTakeFirst();
  return Number(freed.numUpdatedRows) > 0;
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

/** Message ids kept on a webhook run (the count is kept whole): a busy minute stays a small row. */
const MAX_WEBHOOK_MESSAGES = 100;

/** What one applied cohort-webhook message changed in one sync. */
export interface WebhookChanges {
  added: number;
  removed: number;
  retried: number;
  messageId?: string;
  computedMs: number;
  /** The first changes of this message in this sync: counted as one more message of the run. */
  newMessage: boolean;
}

/**
 * Real-time changes as runs: the cohort-webhook messages applied to a sync within one minute
 * (by the time they were applied) make one run, trigger `webhook`, already applied (there is no
 * snapshot or diff: each message is its own delta). In the caller's transaction, with the ledger
 * rows it points at the run. A run whose delivery had completed is running again when a later
 * message of its minute adds changes.
 */
export async function recordWebhookChanges(
  trx: Kysely<DB>,
  syncId: string,
  c: WebhookChanges,
  now = Date.now(),
): Promise<string> {
  const minute = now - (now % 60_000);
  const open = await trx
    .selectFrom('runs')
    .select(['id', 'sample'])
    .where('sync_id', '=', syncId)
    .where('started_at', '>=', minute)
    .where('started_at', '<', minute + 60_000)
    .where('trigger', '=', 'webhook')
    .orderBy('started_at')
    .executeTakeFirst();
  const sample = webhookSample(open?.sample ?? null, c);
  if (open) {
    await trx
      .updateTable('runs')
      .set({
        added: sql`added + ${c.added}`,
        removed: sql`removed + ${c.removed}`,
        retried: sql`retried + ${c.retried}`,
        pending: sql`pending + ${c.added + c.removed + c.retried}`,
        status: 'running',
        finished_at: null,
        sample: JSON.stringify(sample),
      })
      .where('id', '=', open.id)
      .execute();
    return open.id;
  }
  const runId = newId('run');
  await trx
    .insertInto('runs')
    .values({
      id: runId,
      sync_id: syncId,
      status: 'running',
      trigger: 'webhook',
      dry_run: 0,
      ...ZERO_COUNTERS,
      added: c.added,
      removed: c.removed,
      retried: c.retried,
      pending: c.added + c.removed + c.retried,
      error: null,
      hold_reason: null,
      sample: JSON.stringify(sample),
      started_at: now,
      finished_at: null,
      applied_at: now,
      lease_owner: null,
      lease_until: null,
    })
    .execute();
  return runId;
}

interface WebhookSample {
  messages: number;
  message_ids: string[];
  computed_from: number;
  computed_to: number;
}

function webhookSample(raw: string | null, c: WebhookChanges): WebhookSample {
  const prev = raw ? (JSON.parse(raw) as Partial<WebhookSample>) : {};
  const ids = prev.message_ids ?? [];
  if (c.messageId !== undefined && ids.length < MAX_WEBHOOK_MESSAGES && !ids.includes(c.messageId))
    ids.push(c.messageId);
  return {
    messages: (prev.messages ?? 0) + (c.newMessage ? 1 : 0),
    message_ids: ids,
    computed_from: Math.min(prev.computed_from ?? c.computedMs, c.computedMs),
    computed_to: Math.max(prev.computed_to ?? c.computedMs, c.computedMs),
  };
}
