import { sql } from 'kysely';
import type { Context } from '../store';
import type { SnapshotSource, StagingWriter } from './snapshot';

const FLUSH_EVERY = 5000;

/**
 * Buffered writer into `staging` for one run. SQLite: a prepared INSERT OR IGNORE inside one
 * transaction per batch on the raw handle (the query builder costs several µs per row, too much
 * for million-row snapshots). PostgreSQL: one unnest() insert per batch of ~5k rows.
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
    this.inserted += await insertStaging(this.ctx, this.runId, rows);
  }
}

export async function insertStaging(ctx: Context, runId: string, ids: string[]): Promise<number> {
  const store = ctx.store;
  if (store.sqlite) {
    const h = store.sqlite;
    const stmt = h.prepare('INSERT OR IGNORE INTO staging (run_id, external_id) VALUES (?, ?)');
    return h.transaction((list: string[]) => {
      let n = 0;
      for (const id of list) n += stmt.run(runId, id).changes;
      return n;
    })(ids);
  }
  const r = await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, x FROM unnest(${ids}::text[]) AS t(x) ON CONFLICT DO NOTHING`.execute(
    store.db,
  );
  return Number(r.numAffectedRows ?? 0);
}

export async function deleteStaging(ctx: Context, runId: string): Promise<void> {
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
