import { availableParallelism } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { Context } from '../store';
import type { DB } from '../store/schema';
import type { SnapshotSource, StagingWriter } from './snapshot';

/** PostgreSQL: rows per unnest() insert. */
const PG_FLUSH_EVERY = 5000;
/** SQLite: ids per json_each() insert into the temp heap (fewer, larger statements measured ~20% faster than 5k). */
const SQLITE_FLUSH_EVERY = 20000;

/**
 * Where a run's snapshot lives while it is diffed.
 * - 'temp' (SQLite only): a per-connection TEMP table, in memory, never WAL-logged. It is not
 *   state: a crashed run is simply re-run, so the common case writes nothing durable but the
 *   ledger changes themselves.
 * - 'cohort' (SQLite only): a file-imported cohort's own `cohort_members` rows, diffed where
 *   they are. They are already sorted by the primary key, so copying them first (a heap, then a
 *   sorted TEMP table) was pure cost: a 1M-member run's diff took 1.5 s with it, 1.0 s without.
 *   Safe because on SQLite one transaction reads one snapshot and `cohort import` replaces
 *   members in one transaction, so every read of a run (size, diff, sample) is made inside one
 *   transaction.
 * - 'staging': rows of `main.staging` keyed by run_id. Always on PostgreSQL; on SQLite only for
 *   held runs, whose snapshot must survive a restart (and a re-import) until `runs approve`.
 */
export type StagedAt = 'temp' | 'cohort' | 'staging';

/** Which snapshot a diff reads: `cohortId` is required for 'cohort'. */
export interface SnapshotRef {
  runId: string;
  stagedAt?: StagedAt;
  cohortId?: string;
}

type SqliteHandle = NonNullable<Context['store']['sqlite']>;

/** TEMP table names derived from the run id; hex keeps any id a valid, unique identifier. */
function tempNames(runId: string): { heap: string; snap: string } {
  const key = Buffer.from(runId, 'utf8').toString('hex');
  return { heap: `stg_heap_${key}`, snap: `stg_snap_${key}` };
}

/** `SELECT external_id FROM <the run's snapshot>`, sorted by the backing primary key on every form. */
export function stagedIds(ref: SnapshotRef): RawBuilder<unknown> {
  const at = ref.stagedAt ?? 'staging';
  if (at === 'temp') return sql`SELECT external_id FROM ${sql.table(`temp.${tempNames(ref.runId).snap}`)}`;
  if (at === 'cohort') {
    if (ref.cohortId === undefined) throw new TypeError('a cohort snapshot needs its cohort id');
    return sql`SELECT external_id FROM cohort_members WHERE cohort_id = ${ref.cohortId}`;
  }
  return sql`SELECT external_id FROM staging WHERE run_id = ${ref.runId}`;
}

/**
 * Runs `fn` on the raw SQLite handle while holding Kysely's single-connection lock. Raw
 * statements issued while another caller's Kysely transaction is open on the same handle would
 * silently join it (and vanish if it rolls back, as a held run's apply does); taking the lock
 * means no Kysely transaction is open while `fn` runs. Never call it (nor anything below that
 * uses it) from inside a Kysely transaction on the same store: it would wait for itself.
 */
async function withSqlite<T>(ctx: Context, fn: (h: SqliteHandle) => T): Promise<T> {
  const h = ctx.store.sqlite;
  if (!h) throw new TypeError('withSqlite on a non-SQLite store');
  return ctx.store.db.connection().execute(async () => fn(h));
}

/** Helper threads for SQLite's sorter: one per spare core, at most four. */
const SORT_THREADS = Math.max(1, Math.min(4, availableParallelism() - 1));

/**
 * Runs one `INSERT … SELECT … ORDER BY` (a sorted bulk copy) with SQLite's sorter spread over
 * helper threads. The sorter only hands work to them once it spills sorted runs, and its
 * in-memory budget is the main schema's cache_size: with a 2 MB cache for this statement it
 * spills ~2 MB runs that helper threads sort and merge while the main thread reads on. 1M ids,
 * 2 cores: 680-700 ms with the 32 MB cache and no threads, 330-480 ms this way. Returns the
 * rows inserted.
 */
function sortedInsert(h: SqliteHandle, statement: string, ...params: unknown[]): number {
  const cache = h.pragma('cache_size', { simple: true }) as number;
  h.pragma(`threads = ${SORT_THREADS}`);
  h.pragma('cache_size = -2000');
  try {
    return h.prepare(statement).run(...params).changes;
  } finally {
    h.pragma(`cache_size = ${cache}`);
  }
}

/**
 * An unindexed TEMP table that ids are appended to (one JSON array per batch: cheap appends),
 * then copied out ONCE in key order, so the target's primary key is built by appends into full
 * pages: inserting in arrival order (random keys) measured two to four times slower. A run's
 * streamed snapshot and `cohort import` both load this way. Create it outside any transaction:
 * the first one on a handle sets the TEMP storage, which SQLite refuses to change inside one.
 */
export class TempHeap {
  private readonly table: string;
  private readonly appendStmt: BetterSqlite3.Statement;

  constructor(
    private readonly h: SqliteHandle,
    name: string,
  ) {
    ensureTempSettings(h);
    this.table = `temp.${name}`;
    // IF NOT EXISTS: a source that re-reads its file after a cut transfer reuses the same heap.
    h.exec(`CREATE TEMP TABLE IF NOT EXISTS ${name} (external_id TEXT NOT NULL)`);
    this.appendStmt = h.prepare(`INSERT INTO ${this.table} (external_id) SELECT value FROM json_each(?)`);
  }

  append(ids: string[]): void {
    this.appendStmt.run(JSON.stringify(ids));
  }

  /** `INSERT OR IGNORE INTO <into> SELECT <columns> FROM heap ORDER BY external_id`, then drops the heap; returns rows inserted. */
  drainInto(into: string, columns: string, ...params: unknown[]): number {
    const n = sortedInsert(
      this.h,
      `INSERT OR IGNORE INTO ${into} SELECT ${columns} FROM ${this.table} ORDER BY external_id`,
      ...params,
    );
    this.drop();
    return n;
  }

  drop(): void {
    this.h.exec(`DROP TABLE IF EXISTS ${this.table}`);
  }
}

const tempReady = new WeakSet<object>();
function ensureTempSettings(h: SqliteHandle): void {
  if (tempReady.has(h)) return;
  // TEMP tables are never WAL-logged nor fsynced either way. temp_store = MEMORY was measured
  // no faster here and pinned the whole heap + sorted copy in RAM (peak RSS 420 MB for a 2M-id
  // diff vs a 300 MB budget); a bounded 16 MB TEMP page cache spilling to the unlinked temp
  // file (OS page cache) peaked at 244-270 MB.
  h.pragma('temp_store = FILE');
  h.pragma('temp.cache_size = -16000');
  // The diff walks the ledger's primary key range twice; a 32 MB page cache (allocated only as
  // used) keeps the interior pages and the pages being rewritten hot instead of the default.
  h.pragma('cache_size = -32768');
  tempReady.add(h);
}

/**
 * Buffered writer of one run's snapshot.
 *
 * SQLite: ids are appended to an unindexed TEMP heap (cheap appends), and `finish()` builds the
 * run's TEMP snapshot table (external_id PRIMARY KEY, WITHOUT ROWID) with ONE
 * `INSERT … SELECT … ORDER BY`: SQLite's sorter orders the ids so the B-tree is built by appends
 * (inserting in file order, i.e. random keys, measured about twice as slow). The diff then reads
 * it directly (`stagedIds({ runId, stagedAt: 'temp' })`); nothing reaches the WAL.
 * PostgreSQL: one unnest() insert into `staging` per batch.
 * `finish()` returns the number of distinct ids (duplicates are absorbed by the primary key).
 */
export class BufferedStagingWriter implements StagingWriter {
  private buf: string[] = [];
  private inserted = 0;
  private heap: TempHeap | undefined;
  private readonly flushEvery: number;
  readonly stagedAt: StagedAt;

  constructor(
    private readonly ctx: Context,
    private readonly runId: string,
  ) {
    this.stagedAt = ctx.store.sqlite ? 'temp' : 'staging';
    this.flushEvery = ctx.store.sqlite ? SQLITE_FLUSH_EVERY : PG_FLUSH_EVERY;
  }

  /** Returns a promise only when a batch is written, so a tight reader loop awaits once per batch. */
  add(externalId: string): Promise<void> | void {
    this.buf.push(externalId);
    if (this.buf.length >= this.flushEvery) return this.flush();
  }

  async flush(): Promise<void> {
    if (this.buf.length === 0) return;
    const rows = this.buf;
    this.buf = [];
    if (this.ctx.store.sqlite) {
      await withSqlite(this.ctx, (h) => this.heapOn(h).append(rows));
      return;
    }
    this.inserted += await insertStaging(this.ctx, this.runId, rows);
  }

  /** Flushes and, on SQLite, builds the sorted TEMP snapshot table. Returns distinct ids staged. */
  async finish(): Promise<number> {
    await this.flush();
    if (!this.ctx.store.sqlite) return this.inserted;
    return withSqlite(this.ctx, (h) => {
      const heap = this.heapOn(h);
      this.heap = undefined;
      const { snap } = tempNames(this.runId);
      h.exec(`DROP TABLE IF EXISTS temp.${snap}`);
      h.exec(`CREATE TEMP TABLE ${snap} (external_id TEXT PRIMARY KEY) WITHOUT ROWID`);
      return heap.drainInto(`temp.${snap} (external_id)`, 'external_id');
    });
  }

  private heapOn(h: SqliteHandle): TempHeap {
    this.heap ??= new TempHeap(h, tempNames(this.runId).heap);
    return this.heap;
  }
}

export async function insertStaging(ctx: Context, runId: string, ids: string[]): Promise<number> {
  const store = ctx.store;
  if (store.sqlite) {
    return store.sqlite
      .prepare('INSERT OR IGNORE INTO staging (run_id, external_id) SELECT ?, value FROM json_each(?)')
      .run(runId, JSON.stringify(ids)).changes;
  }
  const r =
    await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, x FROM unnest(${ids}::text[]) AS t(x) ON CONFLICT DO NOTHING`.execute(
      store.db,
    );
  return Number(r.numAffectedRows ?? 0);
}

/** Drops a run's TEMP tables (SQLite). Cheap and idempotent. */
export async function dropTempStaging(ctx: Context, runId: string): Promise<void> {
  if (!ctx.store.sqlite) return;
  await withSqlite(ctx, (h) => {
    const { heap, snap } = tempNames(runId);
    h.exec(`DROP TABLE IF EXISTS temp.${heap}; DROP TABLE IF EXISTS temp.${snap}`);
  });
}

/** Discards every form of a run's snapshot: TEMP tables and `staging` rows. */
export async function deleteStaging(ctx: Context, runId: string): Promise<void> {
  await dropTempStaging(ctx, runId);
  await ctx.store.db.deleteFrom('staging').where('run_id', '=', runId).execute();
}

export async function countStaging(db: Kysely<DB>, runId: string): Promise<number> {
  const r = await db
    .selectFrom('staging')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * The snapshot of a file-imported cohort copied into `staging` in SQL (PostgreSQL: its
 * statements read per-statement snapshots, so a run must not diff `cohort_members` in place
 * while an import may replace them; SQLite diffs them in place, see StagedAt).
 */
export function fileSnapshotSource(cohortId: string): SnapshotSource {
  return {
    kind: 'file',
    async load(ctx, runId) {
      const db = ctx.store.db;
      await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, external_id FROM cohort_members WHERE cohort_id = ${cohortId}
        ON CONFLICT DO NOTHING`.execute(db);
      const c = await db.selectFrom('cohorts').select(['blank_ids']).where('id', '=', cohortId).executeTakeFirst();
      return { skippedAnonymous: Number(c?.blank_ids ?? 0), sourceTs: Date.now() };
    },
  };
}
