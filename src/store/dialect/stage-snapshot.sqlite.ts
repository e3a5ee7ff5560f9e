import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely, RawBuilder } from 'kysely';
import type { DB } from '../schema';
import type { SnapshotStage } from './engine';
import { TempHeap } from './temp-heap.sqlite';

/** Ids per json_each() append to the heap (fewer, larger statements measured ~20% faster than 5k). */
const FLUSH_EVERY = 20_000;

/** TEMP table names derived from the run id; hex keeps any id a valid, unique identifier. */
export function tempSnapshotNames(runId: string): { heap: string; snap: string } {
  const key = Buffer.from(runId, 'utf8').toString('hex');
  return { heap: `stg_heap_${key}`, snap: `stg_snap_${key}` };
}

/**
 * A run's snapshot in a per-connection TEMP table, never WAL-logged: it is not state (a crashed
 * run is re-run), so the common case writes nothing durable but the ledger changes themselves.
 * Ids are appended to an unindexed TEMP heap, and `finish()` builds the snapshot table
 * (external_id PRIMARY KEY, WITHOUT ROWID) with ONE sorted copy, so the B-tree is built by
 * appends (inserting in file order, i.e. random keys, measured about twice as slow).
 * Every raw statement runs under Kysely's connection lock (see sqlite-handle.ts).
 */
export function sqliteSnapshotStage(h: BetterSqlite3.Database, db: Kysely<DB>, runId: string): SnapshotStage {
  let buf: string[] = [];
  let heap: TempHeap | undefined;
  const heapOn = () => {
    heap ??= new TempHeap(h, tempSnapshotNames(runId).heap);
    return heap;
  };
  const locked = <T>(fn: () => T) => db.connection().execute(async () => fn());
  const flush = async () => {
    if (buf.length === 0) return;
    const rows = buf;
    buf = [];
    await locked(() => heapOn().append(rows));
  };
  return {
    stagedAt: 'temp',
    add(externalId) {
      buf.push(externalId);
      if (buf.length >= FLUSH_EVERY) return flush();
    },
    flush,
    async addSelected(ids: RawBuilder<unknown>) {
      await flush();
      const q = ids.compile(db);
      await locked(() => heapOn().appendSelected(q.sql, q.parameters));
    },
    async finish() {
      await flush();
      return locked(() => {
        const filled = heapOn();
        heap = undefined;
        const { snap } = tempSnapshotNames(runId);
        h.exec(`DROP TABLE IF EXISTS temp.${snap}`);
        h.exec(`CREATE TEMP TABLE ${snap} (external_id TEXT PRIMARY KEY) WITHOUT ROWID`);
        return filled.drainInto(`temp.${snap} (external_id)`, 'external_id');
      });
    },
  };
}

/** Drops a run's TEMP tables. Cheap and idempotent. */
export function dropSqliteSnapshot(h: BetterSqlite3.Database, db: Kysely<DB>, runId: string): Promise<void> {
  return db.connection().execute(async () => {
    const { heap, snap } = tempSnapshotNames(runId);
    h.exec(`DROP TABLE IF EXISTS temp.${heap}; DROP TABLE IF EXISTS temp.${snap}`);
  });
}
