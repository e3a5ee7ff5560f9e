import { downloadsThisMonth } from '../connectors/amplitude/budget';
import { AmpError } from '../errors';
import type { Context } from '../store';
import type { SnapshotSource } from './snapshot';

/**
 * What a dry run of an Amplitude cohort costs, and how to avoid the cost. A dry run downloads
 * the cohort like a real run, spending one of the source's monthly downloads (Amplitude allows
 * 500); the report says so and how many remain. `--use-last-snapshot` instead diffs against the
 * last download when it is less than a day old: that download is what the ledger's wishes were
 * set from, real-time changes since included, so the dry run shows what a run would retry or
 * change without spending a download.
 */

/** The last download may stand in for a fresh one for this long. */
export const LAST_SNAPSHOT_MAX_AGE_MS = 86_400_000;
const PAGE = 10_000;

/** The dry-run report's note on the download budget (sample.download). */
export interface DownloadNote {
  /** Downloads this dry run spent: 1, or 0 with --use-last-snapshot. */
  spent: number;
  used_this_month: number;
  budget: number;
  remaining: number;
  /** With --use-last-snapshot: when the download it used was made (ISO 8601). */
  snapshot_from?: string;
}

export async function downloadNote(
  ctx: Context,
  sourceId: string,
  spent: number,
  snapshotFrom?: number,
): Promise<DownloadNote> {
  const source = await ctx.store.db
    .selectFrom('sources')
    .select('download_budget')
    .where('id', '=', sourceId)
    .executeTakeFirst();
  const budget = Number(source?.download_budget ?? 0);
  const used = await downloadsThisMonth(ctx, sourceId);
  return {
    spent,
    used_this_month: used,
    budget,
    remaining: Math.max(0, budget - used),
    ...(snapshotFrom === undefined ? {} : { snapshot_from: new Date(snapshotFrom).toISOString() }),
  };
}

/** When the cohort's last completed download was made, refused when there is none from the last day. */
export async function lastDownloadAt(ctx: Context, cohortId: string, now = Date.now()): Promise<number> {
  const last = await ctx.store.db
    .selectFrom('downloads')
    .select('requested_at')
    .where('cohort_id', '=', cohortId)
    .where('status', '=', 'completed')
    .orderBy('requested_at', 'desc')
    .limit(1)
    .executeTakeFirst();
  const at = last ? Number(last.requested_at) : null;
  if (at === null || now - at > LAST_SNAPSHOT_MAX_AGE_MS) {
    const when = at === null ? 'never downloaded' : `last downloaded ${new Date(at).toISOString()}`;
    throw new AmpError(
      'invalid_input',
      `--use-last-snapshot needs a download of cohort ${cohortId} from the last 24 hours (${when}); run the dry run without it (it spends one download)`,
    );
  }
  return at;
}

/** The sync's wished members (set from the last download and real-time changes since), page by page. */
export function ledgerSnapshotSource(syncId: string): SnapshotSource {
  return {
    kind: 'last-snapshot',
    async load(ctx, _runId, writer) {
      let after: string | undefined;
      for (;;) {
        const rows = await ctx.store.db
          .selectFrom('ledger')
          .select('external_id')
          .where('sync_id', '=', syncId)
          .where('desired', '=', 1)
          .$if(after !== undefined, (q) => q.where('external_id', '>', after!))
          .orderBy('external_id')
          .limit(PAGE)
          .execute();
        for (const r of rows) await writer.add(r.external_id);
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.external_id;
      }
      return { skippedAnonymous: 0, sourceTs: Date.now() };
    },
  };
}
