import { type Kysely, type Selectable, sql } from 'kysely';
import { amplitudeSnapshotSource } from '../connectors/amplitude/snapshot';
import { getDestination } from '../connectors/onesignal/destinations';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { LEASE_MS } from '../store/leases';
import type { DB } from '../store/schema';
import { deliverDestination } from './deliver';
import { applyDiff, countConfirmed, countDiff, type DiffParams, sampleDiff } from './diff';
import { guardDecision } from './guard';
import { countOutcomes, finalizeRun, getRunRow, getRunView, holdRunLease, type RunView, releaseRunLease } from './runs';
import type { SnapshotSource } from './snapshot';
import {
  BufferedStagingWriter,
  countStaging,
  deleteStaging,
  dropTempStaging,
  fileSnapshotSource,
  type SnapshotRef,
  stagedIds,
} from './staging';
import { getSync } from './syncs';

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
}

const SAMPLE_SIZE = 10;

/**
 * One run of a sync (DESIGN §2): snapshot → staging → diff in SQL → guard → ledger → deliver.
 * Returns the run as `runs show` prints it. Failures after the run row exists end the run as
 * `failed` with the message (and are returned, not thrown), so every attempt leaves a record.
 */
export async function runSync(ctx: Context, syncId: string, opts: RunOptions = {}): Promise<RunView> {
  const db = ctx.store.db;
  const sync = await getSync(ctx, syncId);
  if (sync.status !== 'active')
    throw new AmpError(
      'run_state',
      `sync ${syncId} is ${sync.status}; finish it with \`ampsignal sync delete ${syncId}\``,
    );
  const cohort = await db.selectFrom('cohorts').selectAll().where('id', '=', sync.cohort_id).executeTakeFirst();
  if (!cohort) throw new AmpError('not_found', `cohort ${sync.cohort_id} of sync ${syncId} no longer exists`);
  const dryRun = opts.dryRun === true;
  const runId = newId('run');
  const lease = newId('lease');
  const startedAt = Date.now();
  await db
    .insertInto('runs')
    .values({
      id: runId,
      sync_id: syncId,
      status: 'running',
      trigger: opts.trigger ?? 'manual',
      dry_run: dryRun ? 1 : 0,
      members: 0,
      added: 0,
      removed: 0,
      unchanged: 0,
      skipped_anonymous: 0,
      delivered: 0,
      not_found: 0,
      failed: 0,
      pending: 0,
      requests: 0,
      error: null,
      hold_reason: null,
      sample: null,
      started_at: startedAt,
      finished_at: null,
      applied_at: null,
      lease_owner: lease,
      lease_until: startedAt + LEASE_MS,
    })
    .execute();
  await db.updateTable('syncs').set({ last_run_id: runId }).where('id', '=', syncId).execute();
  const heartbeat = holdRunLease(ctx, runId, lease);
  try {
    return await workRun(ctx, { runId, lease, startedAt, sync, cohort, dryRun }, opts);
  } finally {
    await heartbeat.stop();
    await releaseRunLease(ctx, runId, lease);
  }
}

/** The part of a run its lease covers: load, diff, guard, apply, and delivery when inline. */
async function workRun(
  ctx: Context,
  r: {
    runId: string;
    lease: string;
    startedAt: number;
    sync: Awaited<ReturnType<typeof getSync>>;
    cohort: Selectable<DB['cohorts']>;
    dryRun: boolean;
  },
  opts: RunOptions,
): Promise<RunView> {
  const { runId, lease, startedAt, sync, cohort, dryRun } = r;
  const syncId = sync.id;
  const db = ctx.store.db;
  try {
    const dest = await getDestination(ctx, sync.destination_id);
    if (!dryRun && dest.status === 'paused') {
      throw new AmpError(
        'run_state',
        `destination ${dest.id} is paused: ${dest.status_reason ?? 'no reason given'}; resume it with \`ampsignal destination resume ${dest.id}\``,
      );
    }
    opts.onProgress?.({ phase: 'load', done: 0, total: 0 });
    const snapshot = await stageSnapshot(ctx, runId, cohort);
    const p: DiffParams = {
      syncId,
      destinationId: sync.destination_id,
      sourceTs: snapshot.sourceTs ?? startedAt,
      ...snapshot.ref,
    };
    opts.onProgress?.({ phase: 'diff', done: 0, total: snapshot.members });

    if (dryRun) {
      // One transaction: on SQLite its reads share one snapshot, so the counters add up even
      // while `cohort import` replaces the members of a cohort diffed in place.
      const { members, counts, sample } = await db.transaction().execute(async (trx) => ({
        members: await snapshot.size(trx),
        counts: await countDiff(trx, p),
        sample: await sampleDiff(trx, p, SAMPLE_SIZE),
      }));
      await stillOurs(db, runId, lease)
        .set({
          status: 'dry_run',
          members,
          added: counts.adds,
          removed: counts.removes,
          unchanged: members - counts.adds,
          skipped_anonymous: snapshot.skippedAnonymous,
          // Nothing is sent: the would-be changes stay pending in the report's arithmetic.
          pending: counts.adds + counts.removes,
          sample: JSON.stringify(sample),
          finished_at: Date.now(),
        })
        .execute();
      await deleteStaging(ctx, runId);
      return getRunView(ctx, runId);
    }

    await db
      .updateTable('runs')
      .set({ members: snapshot.members, skipped_anonymous: snapshot.skippedAnonymous })
      .where('id', '=', runId)
      .execute();
    const held = await applyWithGuard(ctx, p, lease, snapshot.size, Number(sync.guard_threshold));
    if (held) return getRunView(ctx, runId);
    return await deliverRun(ctx, runId, sync.destination_id, opts);
  } catch (e) {
    const err = toAmpError(e);
    await failRun(ctx, runId, err.message);
    return getRunView(ctx, runId);
  }
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
async function stageSnapshot(ctx: Context, runId: string, cohort: Selectable<DB['cohorts']>): Promise<StagedSnapshot> {
  if (cohort.origin === 'file' && ctx.store.sqlite) {
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
  const source: SnapshotSource =
    cohort.origin === 'file' ? fileSnapshotSource(cohort.id) : amplitudeSnapshotSource(cohort.id);
  const writer = new BufferedStagingWriter(ctx, runId);
  const loaded = await source.load(ctx, runId, writer);
  const staged = await writer.finish();
  // A TEMP snapshot is only reachable through the writer, which counted it; `staging` rows are
  // counted in SQL, whoever wrote them.
  const members = writer.stagedAt === 'temp' ? staged : await countStaging(ctx.store.db, runId);
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
  p: DiffParams,
  lease: string,
  size: StagedSnapshot['size'],
  threshold: number,
): Promise<boolean> {
  const held = await ctx.store.db.transaction().execute(async (trx) => {
    const members = await size(trx);
    await sql`SAVEPOINT apply_diff`.execute(trx);
    const counts = await applyDiff(trx, p);
    // The diff never changes `confirmed`, so counting after it is the same count. Only enough
    // confirmed members to decide are counted: the guard holds when removes > threshold ×
    // confirmed (or the snapshot is empty), so `need` of them settle it; a hold recounts exactly
    // for its reason.
    const need = members === 0 ? 1 : Math.floor(counts.removes / threshold) + 1;
    let g = guardDecision({
      members,
      removes: counts.removes,
      confirmedMembers: await countConfirmed(trx, p.syncId, need),
      threshold,
    });
    if (g.hold)
      g = guardDecision({
        members,
        removes: counts.removes,
        confirmedMembers: await countConfirmed(trx, p.syncId),
        threshold,
      });
    if (!g.hold) {
      await assertOurs(
        stillOurs(trx, p.runId, lease).set({
          members,
          added: counts.adds,
          removed: counts.removes,
          unchanged: members - counts.adds,
          applied_at: Date.now(),
        }),
        p.runId,
      );
      return false;
    }
    await sql`ROLLBACK TO SAVEPOINT apply_diff`.execute(trx);
    if (p.stagedAt !== 'staging') {
      await sql`INSERT INTO staging (run_id, external_id) SELECT ${p.runId}, external_id FROM (${stagedIds(p)}) AS s`.execute(
        trx,
      );
    }
    const sample = await sampleDiff(trx, p, SAMPLE_SIZE);
    await assertOurs(
      stillOurs(trx, p.runId, lease).set({
        status: 'held',
        hold_reason: g.reason,
        members,
        added: counts.adds,
        removed: counts.removes,
        unchanged: members - counts.adds,
        // Nothing reached the ledger: the held changes are all pending until approved.
        pending: counts.adds + counts.removes,
        sample: JSON.stringify({ ...sample, source_ts: p.sourceTs }),
        finished_at: Date.now(),
      }),
      p.runId,
    );
    return true;
  });
  // A held run keeps its `staging` rows for approve; TEMP tables go either way.
  await (held ? dropTempStaging(ctx, p.runId) : deleteStaging(ctx, p.runId));
  return held;
}

async function deliverRun(ctx: Context, runId: string, destinationId: string, opts: RunOptions): Promise<RunView> {
  if (opts.deliver === 'enqueue') {
    await finalizeRun(ctx, runId);
    return getRunView(ctx, runId);
  }
  const run = await getRunRow(ctx, runId);
  const total = Number(run.added) + Number(run.removed);
  opts.onProgress?.({ phase: 'deliver', done: 0, total });
  try {
    const r = await deliverDestination(ctx, destinationId, {
      ...(opts.signal ? { signal: opts.signal } : {}),
      onProgress: ({ done }) => opts.onProgress?.({ phase: 'deliver', done: Math.min(done, total), total }),
    });
    await ctx.store.db.updateTable('runs').set({ requests: r.requests }).where('id', '=', runId).execute();
  } catch (e) {
    const err = toAmpError(e);
    await failRun(ctx, runId, err.message);
    return getRunView(ctx, runId);
  }
  // Rows still pending after the pass (a long Retry-After, or leased by another worker) keep
  // the run counting them; later delivery passes refresh its counters.
  await finalizeRun(ctx, runId, { force: true });
  opts.onProgress?.({ phase: 'done', done: total, total });
  return getRunView(ctx, runId);
}

/**
 * The run's row while it is still this process's to write: running and leased by `lease`. A run
 * whose lease lapsed (its process stalled past it) was closed by another process; it must not be
 * applied or decided after all.
 */
function stillOurs(db: Kysely<DB>, runId: string, lease: string) {
  return db
    .updateTable('runs')
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .where('lease_owner', '=', lease);
}

async function assertOurs(update: { executeTakeFirst(): Promise<{ numUpdatedRows: bigint }> }, runId: string) {
  const r = await update.executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1) {
    throw new AmpError(
      'run_state',
      `run ${runId} was closed by another process while this one worked it (its lease lapsed); nothing of it was applied`,
    );
  }
}

/** Ends a running run as failed (a run another process closed meanwhile keeps what it says). */
async function failRun(ctx: Context, runId: string, message: string): Promise<void> {
  const row = await getRunRow(ctx, runId);
  const counts = row.applied_at !== null ? await countOutcomes(ctx, row) : {};
  await ctx.store.db
    .updateTable('runs')
    .set({ ...counts, status: 'failed', error: message, finished_at: Date.now() })
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .execute();
  await deleteStaging(ctx, runId);
}

/** `runs approve`: applies a held run's diff (no guard: a person decided) and delivers it. */
export async function approveRun(
  ctx: Context,
  runId: string,
  opts: Omit<RunOptions, 'dryRun' | 'trigger'> = {},
): Promise<RunView> {
  const run = await getRunRow(ctx, runId);
  const sync = await getSync(ctx, run.sync_id);
  const lease = newId('lease');
  const claimed = await ctx.store.db
    .updateTable('runs')
    .set({
      status: 'running',
      hold_reason: null,
      finished_at: null,
      lease_owner: lease,
      lease_until: Date.now() + LEASE_MS,
    })
    .where('id', '=', runId)
    .where('status', '=', 'held')
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) {
    throw new AmpError('run_state', `run ${runId} is ${run.status}; only a held run can be approved`);
  }
  const heartbeat = holdRunLease(ctx, runId, lease);
  try {
    const sourceTs = Number((JSON.parse(run.sample ?? '{}') as { source_ts?: number }).source_ts ?? run.started_at);
    const p: DiffParams = { syncId: sync.id, destinationId: sync.destination_id, runId, sourceTs };
    // The diff and the mark that it was applied commit together: a crash leaves either both or neither.
    await ctx.store.db.transaction().execute(async (trx) => {
      const counts = await applyDiff(trx, p);
      await assertOurs(
        stillOurs(trx, runId, lease).set({
          added: counts.adds,
          removed: counts.removes,
          unchanged: Number(run.members) - counts.adds,
          pending: 0,
          applied_at: Date.now(),
        }),
        runId,
      );
    });
    await deleteStaging(ctx, runId);
    return await deliverRun(ctx, runId, sync.destination_id, opts);
  } catch (e) {
    await failRun(ctx, runId, toAmpError(e).message);
    return getRunView(ctx, runId);
  } finally {
    await heartbeat.stop();
    await releaseRunLease(ctx, runId, lease);
  }
}

/** `runs reject`: discards a held run; the ledger was never touched. */
export async function rejectRun(ctx: Context, runId: string): Promise<RunView> {
  const run = await getRunRow(ctx, runId);
  const r = await ctx.store.db
    .updateTable('runs')
    .set({ status: 'rejected', finished_at: Date.now() })
    .where('id', '=', runId)
    .where('status', '=', 'held')
    .executeTakeFirst();
  if (Number(r.numUpdatedRows) !== 1)
    throw new AmpError('run_state', `run ${runId} is ${run.status}; only a held run can be rejected`);
  await deleteStaging(ctx, runId);
  return getRunView(ctx, runId);
}
