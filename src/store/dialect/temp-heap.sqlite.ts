import { availableParallelism } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';

/** Helper threads for SQLite's sorter: one per spare core, at most four. */
const SORT_THREADS = Math.max(1, Math.min(4, availableParallelism() - 1));

/**
 * Runs one `INSERT … SELECT … ORDER BY` (a sorted bulk copy) with SQLite's sorter spread over
 * helper threads. The sorter only hands work to them once it spills sorted runs, and its
 * in-memory budget is the main schema's cache_size: with a 2 MB cache for this statement it
 * spills ~2 MB runs that helper threads sort and merge while the main thread reads on (1M ids on
 * 2 cores: about half the time of the 32 MB cache without threads). Returns the rows inserted.
 */
function sortedInsert(h: BetterSqlite3.Database, statement: string, ...params: unknown[]): number {
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
    private readonly h: BetterSqlite3.Database,
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

  /** Appends the ids a `SELECT external_id …` returns. */
  appendSelected(select: string, params: readonly unknown[]): void {
    this.h.prepare(`INSERT INTO ${this.table} (external_id) SELECT external_id FROM (${select})`).run(...params);
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
function ensureTempSettings(h: BetterSqlite3.Database): void {
  if (tempReady.has(h)) return;
  // TEMP tables are never WAL-logged nor fsynced either way. temp_store = MEMORY was measured
  // no faster here and pinned the whole heap + sorted copy in RAM (over the 300 MB budget for a
  // 2M-id diff); a bounded 16 MB TEMP page cache spilling to the unlinked temp file (OS page
  // cache) stays under it.
  h.pragma('temp_store = FILE');
  h.pragma('temp.cache_size = -16000');
  // The diff walks the ledger's primary key range twice; a 32 MB page cache (allocated only as
  // used) keeps the interior pages and the pages being rewritten hot instead of the default.
  h.pragma('cache_size = -32768');
  tempReady.add(h);
}
