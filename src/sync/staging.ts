import { sql } from 'kysely';
import type { Context } from '../store';
import type { SnapshotSource, StagingWriter } from './snapshot';

const FLUSH_EVERY = 5000;

/**
 * Buffered writer into `staging` for one run.
 *
 * SQLite: ids are appended to an unindexed per-connection TEMP heap (sequential, no WAL), and
 * `finish()` moves them into `staging` with ONE `INSERT … SELECT … ORDER BY external_id`:
 * SQLite's external sorter orders them, so the B-tree is built by appends and every page is
 * written once. Inserting a snapshot in file order instead (random keys) dirtied most pages of
 * the index on every commit: measured 35 s vs 2.8 s for 1M ids.
 * PostgreSQL: one unnest() insert per batch of ~5k rows.
 * `inserted` counts distinct rows (duplicates in the snapshot are absorbed by the primary key).
 */
export class BufferedStagingWriter implements StagingWriter {
  inserted = 0;
  private buf: string[] = [];

  constructor(
    private readonly ctx: Context,
    private readonly runId: string,
  ) {}

  add(externalId: string): Promise<void> | void {
    this.buf.push(externalId);
    if (this.buf.length >= FLUSH_EVERY) return this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const rows = this.buf;
    this.buf = [];
    const h = this.ctx.store.sqlite;
    if (h) {
      ensureHeap(h);
      h.prepare('INSERT INTO temp.staging_heap (run_id, external_id) SELECT ?, value FROM json_each(?)').run(this.runId, JSON.stringify(rows));
      return;
    }
    this.inserted += await insertStaging(this.ctx, this.runId, rows);
  }

  /** Flushes and, on SQLite, moves the heap into `staging` in key order. Returns distinct rows staged. */
  async finish(): Promise<number> {
    await this.flush();
    const h = this.ctx.store.sqlite;
    if (h) {
      ensureHeap(h);
      const moved = h.transaction(() => {
        const n = h
          .prepare('INSERT OR IGNORE INTO main.staging (run_id, external_id) SELECT run_id, external_id FROM temp.staging_heap WHERE run_id = ? ORDER BY external_id')
          .run(this.runId).changes;
        h.prepare('DELETE FROM temp.staging_heap WHERE run_id = ?').run(this.runId);
        return n;
      })();
      this.inserted += moved;
    }
    return this.inserted;
  }
}

const heapReady = new WeakSet<object>();
function ensureHeap(h: NonNullable<Context['store']['sqlite']>): void {
  if (heapReady.has(h)) return;
  h.exec('CREATE TEMP TABLE IF NOT EXISTS staging_heap (run_id TEXT NOT NULL, external_id TEXT NOT NULL)');
  // The diff walks the ledger and staging indexes once each; a 32 MB page cache (allocated only
  // as used) keeps their interior pages hot for million-row snapshots instead of SQLite's 2 MB.
  h.pragma('cache_size = -32768');
  heapReady.add(h);
}

export async function insertStaging(ctx: Context, runId: string, ids: string[]): Promise<number> {
  const store = ctx.store;
  if (store.sqlite) {
    return store.sqlite
      .prepare('INSERT OR IGNORE INTO staging (run_id, external_id) SELECT ?, value FROM json_each(?)')
      .run(runId, JSON.stringify(ids)).changes;
  }
  const r = await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, x FROM unnest(${ids}::text[]) AS t(x) ON CONFLICT DO NOTHING`.execute(
    store.db,
  );
  return Number(r.numAffectedRows ?? 0);
}

export async function deleteStaging(ctx: Context, runId: string): Promise<void> {
  const h = ctx.store.sqlite;
  if (h && heapReady.has(h)) h.prepare('DELETE FROM temp.staging_heap WHERE run_id = ?').run(runId);
  await ctx.store.db.deleteFrom('staging').where('run_id', '=', runId).execute();
}

export async function countStaging(ctx: Context, runId: string): Promise<number> {
  const r = await ctx.store.db
    .selectFrom('staging')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** The snapshot of a file-imported cohort: its cohort_members rows, copied in SQL. */
export function fileSnapshotSource(cohortId: string): SnapshotSource {
  return {
    kind: 'file',
    async load(ctx, runId) {
      const db = ctx.store.db;
      await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, external_id FROM cohort_members WHERE cohort_id = ${cohortId}`.execute(
        db,
      );
      const c = await db.selectFrom('cohorts').select(['blank_ids', 'updated_at']).where('id', '=', cohortId).executeTakeFirst();
      return { skippedAnonymous: Number(c?.blank_ids ?? 0), sourceTs: Date.now() };
    },
  };
}
