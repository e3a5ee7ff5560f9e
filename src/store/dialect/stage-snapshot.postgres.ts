import { type Kysely, sql } from 'kysely';
import type { DB } from '../schema';
import type { SnapshotStage } from './engine';

/** Rows per unnest() insert: one round trip per 5,000 ids. */
const FLUSH_EVERY = 5_000;

/**
 * A run's snapshot as `staging` rows keyed by run_id, one unnest() insert per batch (there is no
 * per-connection table a pooled diff could be sure to read again). `finish()` counts the rows
 * in SQL: duplicates were absorbed by the primary key.
 */
export function postgresSnapshotStage(db: Kysely<DB>, runId: string): SnapshotStage {
  let buf: string[] = [];
  const flush = async () => {
    if (buf.length === 0) return;
    const ids = buf;
    buf = [];
    await sql`INSERT INTO staging (run_id, external_id) SELECT ${runId}, x FROM unnest(${ids}::text[]) AS t(x) ON CONFLICT DO NOTHING`.execute(
      db,
    );
  };
  return {
    stagedAt: 'staging',
    add(externalId) {
      buf.push(externalId);
      if (buf.length >= FLUSH_EVERY) return flush();
    },
    flush,
    async finish() {
      await flush();
      const r = await db
        .selectFrom('staging')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('run_id', '=', runId)
        .executeTakeFirstOrThrow();
      return Number(r.n);
    },
  };
}
