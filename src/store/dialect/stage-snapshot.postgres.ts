import { createHash } from 'node:crypto';
import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DB } from '../schema';
import type { SnapshotStage } from './engine';

/** Rows per unnest() append: one round trip per 20,000 ids. */
const FLUSH_EVERY = 20_000;

/**
 * The run's own table names, derived from its id (a hash: any id gives a valid identifier within
 * PostgreSQL's 63 characters, the same on every process, so recovery can drop a dead run's).
 */
export function runSnapshotTables(runId: string): { heap: string; snap: string } {
  const key = createHash('sha1').update(runId).digest('hex').slice(0, 32);
  return { heap: `stg_heap_${key}`, snap: `stg_snap_${key}` };
}

/**
 * A run's snapshot in UNLOGGED tables of its own, never WAL-logged: it is not state (a run whose
 * process or database died is failed and re-run; a held run copies it into `staging`). Ids are
 * appended to an unindexed heap and `finish()` keeps each once, in one `SELECT DISTINCT`, in the
 * snapshot table the diff reads. No index: the diff's EXCEPT and anti-joins hash it, while a
 * key on random ids (the old `staging` rows) cost about ten times the load itself.
 */
export function postgresSnapshotStage(db: Kysely<DB>, runId: string): SnapshotStage {
  const { heap, snap } = runSnapshotTables(runId);
  let buf: string[] = [];
  let created = false;
  const heapReady = async () => {
    if (created) return;
    await sql`CREATE UNLOGGED TABLE IF NOT EXISTS ${sql.table(heap)} (external_id text NOT NULL)`.execute(db);
    created = true;
  };
  const flush = async () => {
    if (buf.length === 0) return;
    const ids = buf;
    buf = [];
    await heapReady();
    await sql`INSERT INTO ${sql.table(heap)} (external_id) SELECT unnest(${ids}::text[])`.execute(db);
  };
  return {
    stagedAt: 'table',
    add(externalId) {
      buf.push(externalId);
      if (buf.length >= FLUSH_EVERY) return flush();
    },
    flush,
    async addSelected(ids: RawBuilder<unknown>) {
      await flush();
      await heapReady();
      await sql`INSERT INTO ${sql.table(heap)} (external_id) SELECT external_id FROM (${ids}) AS s`.execute(db);
    },
    async finish() {
      await flush();
      await heapReady();
      await sql`DROP TABLE IF EXISTS ${sql.table(snap)}`.execute(db);
      await sql`CREATE UNLOGGED TABLE ${sql.table(snap)} (external_id text NOT NULL)`.execute(db);
      const r =
        await sql`INSERT INTO ${sql.table(snap)} (external_id) SELECT DISTINCT external_id FROM ${sql.table(heap)}`.execute(
          db,
        );
      await sql`DROP TABLE ${sql.table(heap)}`.execute(db);
      created = false;
      // Without statistics the planner would guess the table's size from its pages alone.
      await sql`ANALYZE ${sql.table(snap)}`.execute(db);
      return Number(r.numAffectedRows ?? 0);
    },
  };
}

/** Drops a run's snapshot tables. Cheap and idempotent, from any process. */
export async function dropPostgresSnapshot(db: Kysely<DB>, runId: string): Promise<void> {
  const { heap, snap } = runSnapshotTables(runId);
  await sql`DROP TABLE IF EXISTS ${sql.table(heap)}, ${sql.table(snap)}`.execute(db);
}
