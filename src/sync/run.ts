import { type Kysely, type Selectable, sql } from 'kysely';
import { AmpError, toAmpError } from '../errors';
import type { Context } from '../store';
import type { DB } from '../store/schema';
import { amplitudeSnapshotSource } from './amplitude-snapshot';
import { deliverableDestination, deliverDestination } from './deliver';
import {
  applyDiff,
  countConfirmed,
  countConfirmedRemovals,
  countDiff,
  countRetries,
  type DiffParams,
  diffTransaction,
  sampleDiff,
} from './diff';
import { guardDecision } from './guard';
import { type DownloadNote, downloadNote, lastDownloadAt, ledgerSnapshotSource } from './last-snapshot';
import { recordSettledByDiff } from './records';
import {
  finalizeRun,
  heldSourceTs,
  holdRunLease,
  openRun,
  type RunHandle,
  recordApplied,
  recordDryRun,
  recordHeld,
  recordSnapshot,
  rejectHeldRun,
  releaseRunLease,
  reopenFailedRows,
  reopenHeldRun,
} from './run-record';
import { getRunRow, getRunView, type RunView } from './runs';
import type { SnapshotSource } from './snapshot';
import {
  deleteStaging,
  dropTempStaging,
  fileSnapshotSource,
  type SnapshotRef,
  snapshotWriter,
  stagedIds,
} from './staging';
import { getSync, type SyncRow } from './syncs';

export type { RunView } from './runs';

export interface RunProgress {
  phase: 'load' | 'diff' | 'deliver' | 'done';
  done: number;
  total: number;
}

export interface RunOptions {
  dryRun?: boolean;
  trigger?: string;
  /** 'inline' delivers before returning (CLI); 'enqueue' leaves delivery to the jobs layer. */
  deliver?: 'inline' | 'enqueue';
  onProgress?: (p: RunProgress) => void;
  signal?: AbortSignal;
  /** A dry run of an Amplitude cohort diffs against the last download (under a day old) instead of spending one. */
  useLastSnapshot?: boolean;
}

const SAMPLE_SIZE = 10;

/**
 * One run of a sync (DESIGN §2): snapshot → staging → diff in SQL → guard → ledger → deliver.
 * Returns the run as `runs show` prints it. Failures after the run row exists end the run as
 * `failed` with the message (and are returned, not thrown), so every attempt leaves a record.
 */
export async function runSync(ctx: Context, syncId: string, opts: RunOptions = {}): Promise<RunView> {
  const { sync, cohort } = await runnableSync(ctx, syncId);
  const dryRun = opts.dryRun === true;
  const run = await openRun(ctx, { syncId, trigger: opts.trigger ?? 'manual', dryRun });
  return whileLeased(ctx, run, async () => {
    try {
      return await workRun(ctx, run, { sync, cohort, dryRun }, opts);
    } catch (e) {
      return failRun(ctx, run.runId, e);
    }
  });
}

async function runnableSync(ctx: Context, syncId: string) {
  const sync = await getSync(ctx, syncId);
  if (sync.status !== 'active')
    throw new AmpError(
      'run_state',
      sync.status === 'paused'
        ? `sync ${syncId} is paused; resume it with \`ampsignal sync resume ${syncId}\``
        : `sync ${syncId} is ${sync.status}; finish it with \`ampsignal sync delete ${syncId}\``,
    );
  const cohort = await ctx.store.db
    .selectFrom('cohorts')
    .selectAll()
    .where('id', '=', sync.cohort_id)
    .executeTakeFirst();
  if (!cohort) throw new AmpError('not_found', `cohort ${sync.cohort_id} of sync ${syncId} no longer exists`);
  return { sync, cohort };
}

/** Works the run under its lease, renewed while this process lives and released at the end. */
async function whileLeased<T>(ctx: Context, run: RunHandle, work: () => Promise<T>): Promise<T> {
  const heartbeat = holdRunLease(ctx, run);
  try {
    return await work();
  } finally {
    await heartbeat.stop();
    await releaseRunLease(ctx, run);
  }
}

/** Ends the run as failed with the error's message (and drops its staging); returns it as printed. */
async function failRun(ctx: Context, runId: string, e: unknown): Promise<RunView> {
  await finalizeRun(ctx, runId, { failed: toAmpError(e).message });
  await deleteStaging(ctx, runId);
  return getRunView(ctx, runId);
}

/** The part of a run its lease covers: load, diff, guard, apply, and delivery when inline. */
async function workRun(
  ctx: Context,
  run: RunHandle,
  r: { sync: SyncRow; cohort: Selectable<DB['cohorts']>; dryRun: boolean },
  opts: RunOptions,
): Promise<RunView> {
  const { sync } = r;
  // A paused destination is refused before the pull, which may cost a download of the budget.
  if (!r.dryRun) await deliverableDestination(ctx, sync.destination_id);
  opts.onProgress?.({ phase: 'load', done: 0, total: 0 });
  const lastSnapshot = await lastSnapshotOf(r.cohort, r.dryRun, opts, ctx);
  const snapshot = await stageSnapshot(
    ctx,
    run.runId,
    r.cohort,
    sync.external_id_property,
    lastSnapshot !== null ? sync.id : null,
  );
  const p: DiffParams = {
    syncId: sync.id,
    destinationId: sync.destination_id,
    sourceTs: snapshot.sourceTs ?? run.startedAt,
    ...snapshot.ref,
  };
  opts.onProgress?.({ phase: 'diff', done: 0, total: snapshot.members });
  if (r.dryRun) {
    // An Amplitude dry run says what it cost: a download of the monthly budget, or none.
    const note =
      r.cohort.origin === 'file' || !r.cohort.source_id
        ? undefined
        : await downloadNote(ctx, r.cohort.source_id, lastSnapshot ? 0 : 1, lastSnapshot ?? undefined);
    return dryRunReport(ctx, run, p, snapshot, Number(sync.guard_threshold), note);
  }
  await recordSnapshot(ctx, run, snapshot);
  const held = await applyWithGuard(ctx, run, p, snapshot.size, Number(sync.guard_threshold));
  if (held) return getRunView(ctx, run.runId);
  return deliverRun(ctx, run.runId, sync.destination_id, opts);
}

/**
 * `--use-last-snapshot`: only a dry run of an Amplitude cohort can stand on the last download,
 * and only while it is less than a day old; when it was made, or null for a fresh snapshot.
 */
async function lastSnapshotOf(
  cohort: Selectable<DB['cohorts']>,
  dryRun: boolean,
  opts: RunOptions,
  ctx: Context,
): Promise<number | null> {
  if (!opts.useLastSnapshot) return null;
  if (!dryRun) throw new AmpError('invalid_input', '--use-last-snapshot is for dry runs only (--dry-run)');
  if (cohort.origin === 'file') return null; // a file cohort's snapshot costs no download
  return lastDownloadAt(ctx, cohort.id);
}

/**
 * A dry run's report: counters and samples, read in one transaction (on SQLite its reads share
 * one snapshot, so the counters add up even while `cohort import` replaces the members of a
 * cohort diffed in place); nothing is written to the ledger.
 */
async function dryRunReport(
  ctx: Context,
  run: RunHandle,
  p: DiffParams,
  snapshot: StagedSnapshot,
  threshold: number,
  download?: DownloadNote,
): Promise<RunView> {
  const { members, counts, sample, wouldHold } = await diffTransaction(ctx, async (trx) => {
    const members = await snapshot.size(trx);
    const counts = { ...(await countDiff(trx, p)), retried: await countRetries(trx, p) };
    const sample = { ...(await sampleDiff(trx, p, SAMPLE_SIZE)), ...(download ? { download } : {}) };
    // The guard's verdict on the real run: the diff applied and taken back, as the real run would.
    await sql`SAVEPOINT dry_guard`.execute(trx);
    await applyDiff(trx, p);
    const g = await guard(trx, p.syncId, { members, threshold });
    await sql`ROLLBACK TO SAVEPOINT dry_guard`.execute(trx);
    return { members, counts, sample, wouldHold: g.hold ? g.reason : undefined };
  });
  await recordDryRun(ctx, run, {
    members,
    ...counts,
    skippedAnonymous: snapshot.skippedAnonymous,
    sample,
    ...(wouldHold ? { wouldHold } : {}),
  });
  await deleteStaging(ctx, run.runId);
  return getRunView(ctx, run.runId);
}

interface StagedSnapshot {
  ref: SnapshotRef;
  /** Members as known after staging (exact unless the snapshot is read in place). */
  members: number;
  /** Exact member count, read in the caller's transaction alongside the diff. */
  size: (db: Kysely<DB>) => Promise<number>;
  skippedAnonymous: number;
  sourceTs?: number;
}

/**
 * Puts the run's snapshot where the diff reads it (see StagedAt): a file cohort on SQLite is
 * read in place; anything else goes through the staging writer (TEMP tables on SQLite,
 * `staging` rows on PostgreSQL).
 */
async function stageSnapshot(
  ctx: Context,
  runId: string,
  cohort: Selectable<DB['cohorts']>,
  externalIdProperty: string,
  /** Diff against this sync's wished members (the last download's) instead of a fresh snapshot. */
  lastSnapshotOfSync?: string | null,
): Promise<StagedSnapshot> {
  if (cohort.origin === 'file' && ctx.store.engine.can.inPlaceSnapshot) {
    const size = async (db: Kysely<DB>) => {
      const c = await db.selectFrom('cohorts').select('size').where('id', '=', cohort.id).executeTakeFirst();
      return Number(c?.size ?? 0);
    };
    return {
      ref: { runId, stagedAt: 'cohort', cohortId: cohort.id },
      members: Number(cohort.size ?? 0),
      size,
      skippedAnonymous: Number(cohort.blank_ids),
      sourceTs: Date.now(),
    };
  }
  const source: SnapshotSource = lastSnapshotOfSync
    ? ledgerSnapshotSource(lastSnapshotOfSync)
    : cohort.origin === 'file'
      ? fileSnapshotSource(cohort.id)
      : amplitudeSnapshotSource(cohort.id, { externalIdProperty });
  const writer = snapshotWriter(ctx, runId);
  const loaded = await source.load(ctx, runId, writer);
  const members = await writer.finish();
  return {
    ref: { runId, stagedAt: writer.stagedAt },
    members,
    size: async () => members,
    skippedAnonymous: loaded.skippedAnonymous,
    ...(loaded.sourceTs === undefined ? {} : { sourceTs: loaded.sourceTs }),
  };
}

/**
 * Applies the diff in one transaction, or takes it back and holds the run when the guard trips
 * (the removes are counted by the very statement that would apply them, so the common,
 * unguarded case pays for one pass, not two). A held run records, in the same transaction and
 * so from the same snapshot, its counters, its sample and a copy of its snapshot in `staging`
 * (on SQLite it was a TEMP table or the cohort's members until then): approve works after a
 * restart and applies what was reviewed even if the cohort is imported again meanwhile.
 */
async function applyWithGuard(
  ctx: Context,
  run: RunHandle,
  p: DiffParams,
  size: StagedSnapshot['size'],
  threshold: number,
): Promise<boolean> {
  const held = await diffTransaction(ctx, async (trx) => {
    const members = await size(trx);
    const retried = await countRetries(trx, p);
    await sql`SAVEPOINT apply_diff`.execute(trx);
    const counts = { ...(await applyDiff(trx, p)), retried };
    const g = await guard(trx, p.syncId, { members, threshold });
    if (!g.hold) {
      const settledNotFound = await recordSettledByDiff(trx, ctx.store, run.runId);
      await recordApplied(trx, run, { members, ...counts, settledNotFound });
      return false;
    }
    await sql`ROLLBACK TO SAVEPOINT apply_diff`.execute(trx);
    if (p.stagedAt !== 'staging') {
      await sql`INSERT INTO staging (run_id, external_id) SELECT ${p.runId}, external_id FROM (${stagedIds(p)}) AS s`.execute(
        trx,
      );
    }
    const sample = await sampleDiff(trx, p, SAMPLE_SIZE);
    await recordHeld(trx, run, { members, ...counts, reason: g.reason, sample, sourceTs: p.sourceTs });
    return true;
  });
  // A held run keeps its `staging` rows for approve; TEMP tables go either way.
  await (held ? dropTempStaging(ctx, p.runId) : deleteStaging(ctx, p.runId));
  return held;
}

/**
 * The guard's decision. The diff never changes `confirmed`, so counting after it is the same
 * count. Only enough confirmed members to decide are counted: the guard holds when removes >
 * threshold × confirmed (or the snapshot is empty), so `need` of them settle it; a hold recounts
 * exactly for its reason.
 */
async function guard(trx: Kysely<DB>, syncId: string, m: { members: number; threshold: number }) {
  // Only removals of tags OneSignal confirmed weigh: users it never had are no loss.
  const d = { ...m, removes: await countConfirmedRemovals(trx, syncId) };
  const need = d.members === 0 ? 1 : Math.floor(d.removes / d.threshold) + 1;
  const g = guardDecision({ ...d, confirmedMembers: await countConfirmed(trx, syncId, need) });
  return g.hold ? guardDecision({ ...d, confirmedMembers: await countConfirmed(trx, syncId) }) : g;
}

async function deliverRun(ctx: Context, runId: string, destinationId: string, opts: RunOptions): Promise<RunView> {
  if (opts.deliver === 'enqueue') {
    await finalizeRun(ctx, runId);
    return getRunView(ctx, runId);
  }
  const run = await getRunRow(ctx, runId);
  const total = Number(run.added) + Number(run.removed) + Number(run.retried);
  opts.onProgress?.({ phase: 'deliver', done: 0, total });
  try {
    // The pass charges its requests to the runs whose changes they carry, this one among them.
    await deliverDestination(ctx, destinationId, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onProgress: ({ done }) => opts.onProgress?.({ phase: 'deliver', done: Math.min(done, total), total }),
    });
  } catch (e) {
    return failRun(ctx, runId, e);
  }
  // Rows still pending after the pass (a long Retry-After, or leased by another worker) keep
  // the run counting them; later delivery passes refresh its counters.
  await finalizeRun(ctx, runId, { force: true });
  opts.onProgress?.({ phase: 'done', done: total, total });
  return getRunView(ctx, runId);
}

/** `runs approve`: applies a held run's diff (no guard: a person decided) and delivers it. */
export async function approveRun(
  ctx: Context,
  runId: string,
  opts: Omit<RunOptions, 'dryRun' | 'trigger'> = {},
): Promise<RunView> {
  const row = await getRunRow(ctx, runId);
  const sync = await getSync(ctx, row.sync_id);
  const run = await reopenHeldRun(ctx, runId);
  return whileLeased(ctx, run, async () => {
    try {
      const p: DiffParams = { syncId: sync.id, destinationId: sync.destination_id, runId, sourceTs: heldSourceTs(row) };
      // The diff and the mark that it was applied commit together: a crash leaves either both or neither.
      await diffTransaction(ctx, async (trx) => {
        const retried = await countRetries(trx, p);
        const counts = { ...(await applyDiff(trx, p)), retried };
        const settledNotFound = await recordSettledByDiff(trx, ctx.store, runId);
        await recordApplied(trx, run, { members: Number(row.members), ...counts, settledNotFound });
      });
      await deleteStaging(ctx, runId);
      return await deliverRun(ctx, runId, sync.destination_id, opts);
    } catch (e) {
      return failRun(ctx, runId, e);
    }
  });
}

/** `runs reject`: discards a held run; the ledger was never touched. */
export async function rejectRun(ctx: Context, runId: string): Promise<RunView> {
  await rejectHeldRun(ctx, runId);
  await deleteStaging(ctx, runId);
  return getRunView(ctx, runId);
}

/** What `runs retry` did: how many failed users are pending again, and the run as it is now. */
export interface RetryResult {
  requeued: number;
  run: RunView;
}

/**
 * `runs retry`: a finished run's users whose delivery failed for good are pending again and
 * delivered, inline (this process, under the run's lease) or, with 'enqueue', by the jobs layer
 * (the caller enqueues the destination's delivery). Refused for a paused sync or destination,
 * like a run.
 */
export async function retryFailedRun(
  ctx: Context,
  runId: string,
  opts: Omit<RunOptions, 'dryRun' | 'trigger'> = {},
): Promise<RetryResult> {
  const row = await getRunRow(ctx, runId);
  const { sync } = await runnableSync(ctx, row.sync_id);
  await deliverableDestination(ctx, sync.destination_id);
  const { run, requeued } = await reopenFailedRows(ctx, runId);
  const view = await whileLeased(ctx, run, () => deliverRun(ctx, runId, sync.destination_id, opts));
  return { requeued, run: view };
}
