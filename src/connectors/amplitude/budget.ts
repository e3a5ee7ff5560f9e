import { AmpError } from '../../errors';
import type { Context } from '../../store';
import { DOWNLOADS_PER_MONTH } from './constants';
import { getSource } from './sources';

/**
 * The monthly cohort-download budget of a source (Amplitude: 500 "Get one cohort" requests a
 * month on Growth/Enterprise). Planned at sync creation from cadences, enforced at pull time from
 * the `downloads` rows, which are written before the request is sent.
 */

/** Statuses that count against the budget. 'refused' = Amplitude answered the request step with a
 * non-202 (auth, unknown cohort, throttled to the end): no download job was created. */
const COUNTED = ['requested', 'completed', 'failed'] as const;

export function monthKey(ms: number): string {
  return new Date(ms).toISOString().slice(0, 7);
}

export function downloadsPerMonth(cadence: string): number {
  const n = DOWNLOADS_PER_MONTH[cadence];
  if (n === undefined)
    throw new AmpError(
      'invalid_input',
      `unknown cadence "${cadence}" (one of ${Object.keys(DOWNLOADS_PER_MONTH).join(', ')})`,
    );
  return n;
}

/** Downloads a month the source's existing syncs plan (one download per sync run). */
export async function plannedMonthlyDownloads(
  ctx: Context,
  sourceId: string,
  opts: { exceptSyncId?: string } = {},
): Promise<{ total: number; syncs: number }> {
  let q = ctx.store.db
    .selectFrom('syncs')
    .innerJoin('cohorts', 'cohorts.id', 'syncs.cohort_id')
    .select(['syncs.cadence', 'syncs.last_run_id'])
    .where('cohorts.source_id', '=', sourceId)
    .where('syncs.status', '<>', 'deleting')
    .where('cohorts.origin', '<>', 'file');
  // A sync changing its cadence: what the others plan, plus its new cadence.
  if (opts.exceptSyncId) q = q.where('syncs.id', '<>', opts.exceptSyncId);
  const rows = await q.execute();
  let total = 0;
  let syncs = 0;
  for (const r of rows) {
    // A 'once' sync that already ran will not download again.
    const n = r.cadence === 'once' && r.last_run_id ? 0 : (DOWNLOADS_PER_MONTH[r.cadence] ?? 0);
    if (n > 0) syncs++;
    total += n;
  }
  return { total, syncs };
}

/**
 * Refuses a sync whose cadence would take the source's planned downloads over its monthly
 * budget, with the arithmetic in the message. Called by createSync for cohorts with a source.
 */
export async function assertCadenceFitsBudget(
  ctx: Context,
  sourceId: string,
  cadence: string,
  opts: { exceptSyncId?: string } = {},
): Promise<void> {
  const source = await getSource(ctx, sourceId);
  const adds = downloadsPerMonth(cadence);
  if (adds === 0) return;
  const planned = await plannedMonthlyDownloads(ctx, sourceId, opts);
  const total = planned.total + adds;
  if (total <= source.download_budget) return;
  const what = cadence === 'realtime' ? 'realtime (a daily reconcile pull)' : cadence;
  throw new AmpError(
    'budget_exhausted',
    `${what} = about ${adds} downloads a month; source ${source.name} already plans ${planned.total} of its ${source.download_budget}` +
      ` (${planned.syncs} scheduled sync${planned.syncs === 1 ? '' : 's'}), so this sync would need ${planned.total} + ${adds} = ${total} > ${source.download_budget}.` +
      ` Pick a slower cadence (daily = 30, realtime = webhook pushes + 30), or raise the budget if your Amplitude plan allows more.`,
    {
      details: {
        field: 'cadence',
        cadence,
        per_month: adds,
        planned: planned.total,
        budget: source.download_budget,
        total,
      },
    },
  );
}

export async function downloadsThisMonth(ctx: Context, sourceId: string, nowMs = Date.now()): Promise<number> {
  const r = await ctx.store.db
    .selectFrom('downloads')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('source_id', '=', sourceId)
    .where('month', '=', monthKey(nowMs))
    .where('status', 'in', COUNTED)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * Counts one download against this month's budget, before the request is sent (a crash after
 * sending must not leave it uncounted), or refuses with budget_exhausted. The check and the
 * insert are one transaction; on PostgreSQL the source row is locked so concurrent pulls of one
 * source cannot both take the last slot.
 */
export async function reserveDownload(
  ctx: Context,
  args: { sourceId: string; cohortId: string; runId: string | null },
  nowMs = Date.now(),
): Promise<number> {
  return ctx.store.db.transaction().execute(async (trx) => {
    let q = trx.selectFrom('sources').select(['id', 'name', 'download_budget']).where('id', '=', args.sourceId);
    if (ctx.store.engine.can.rowLocks) q = q.forUpdate();
    const source = await q.executeTakeFirst();
    if (!source) throw new AmpError('not_found', `no source with id ${args.sourceId}`);
    const month = monthKey(nowMs);
    const used = await trx
      .selectFrom('downloads')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('source_id', '=', args.sourceId)
      .where('month', '=', month)
      .where('status', 'in', COUNTED)
      .executeTakeFirstOrThrow();
    if (Number(used.n) >= source.download_budget) {
      throw new AmpError(
        'budget_exhausted',
        `source ${source.name} has used ${Number(used.n)} of its ${source.download_budget} cohort downloads for ${month}; ` +
          `the next pull can run on the 1st (UTC), or raise the budget if your Amplitude plan allows more`,
        { details: { used: Number(used.n), budget: source.download_budget, month } },
      );
    }
    const row = await trx
      .insertInto('downloads')
      .values({
        source_id: args.sourceId,
        cohort_id: args.cohortId,
        run_id: args.runId,
        month,
        status: 'requested',
        requested_at: nowMs,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return Number(row.id);
  });
}

export async function markDownload(
  ctx: Context,
  id: number,
  status: 'completed' | 'failed' | 'refused',
): Promise<void> {
  await ctx.store.db
    .updateTable('downloads')
    .set({ status })
    .where('id', '=', id)
    .where('status', '=', 'requested')
    .execute();
}
