/**
 * The database a bench runs on: every bench runs once on SQLite and once on PostgreSQL (unless it
 * says it only makes sense on one), each time on a fresh database of its own that is dropped
 * after. `npm run bench -- --db sqlite|postgres` picks one.
 * PostgreSQL is AMPSIGNAL_TEST_PG_URL or the local default every machine here runs; a bench gets
 * a schema of its own there (the same isolation the tests use), dropped with graphile-worker's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { type Context, openContext, type ProcessRole } from '../src/store';
import { sqliteHandleOf } from '../src/store/dialect/sqlite';

export type BenchDialect = 'sqlite' | 'postgres';
export const DIALECTS: readonly BenchDialect[] = ['sqlite', 'postgres'];

export const PG_URL = process.env.AMPSIGNAL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface BenchDatabase {
  dialect: BenchDialect;
  /** What `--db` / openContext take. */
  url: string;
  /** Removes the database (the SQLite file's folder, or the PostgreSQL schemas). Idempotent. */
  drop(): Promise<void>;
}

/** A fresh, empty database for one bench; `label` names it (letters, digits, underscores). */
export async function freshDatabase(dialect: BenchDialect, label: string): Promise<BenchDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), `ampsignal-bench-${label}-`));
    return {
      dialect,
      url: `sqlite:${join(dir, 'bench.db')}`,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `bench_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  return {
    dialect,
    url: `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`,
    drop: () => dropSchemas(schema, `${schema}_gw`),
  };
}

async function dropSchemas(...schemas: string[]): Promise<void> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  } finally {
    await c.end();
  }
}

/**
 * Brings freshly loaded tables to the state a long-running install has before a timed phase, so
 * the phase does not pay for the load's leftovers: on SQLite the WAL checkpointed into the
 * database; on PostgreSQL the tables vacuumed and analysed (what autovacuum does soon after a
 * bulk load; without statistics the planner guesses on a million-row table) and a checkpoint.
 */
export async function settle(ctx: Context, tables: string[]): Promise<void> {
  const { store } = ctx;
  const h = sqliteHandleOf(store);
  if (h) {
    h.pragma('wal_checkpoint(TRUNCATE)');
    return;
  }
  for (const t of tables) await sql`VACUUM ANALYZE ${sql.table(t)}`.execute(store.db);
  // CHECKPOINT needs a superuser or pg_checkpoint; without either, the background checkpointer
  // writes the load out in its own time (noisier figures, still correct ones).
  await sql`CHECKPOINT`.execute(store.db).catch(() => {});
}

/** `--db sqlite|postgres` (or `--db=…`) out of the command line; the rest are bench names. */
export function parseBenchArgs(argv: string[]): { names: string[]; dialects: readonly BenchDialect[] } {
  const names: string[] = [];
  let chosen: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--db') chosen = argv[++i] ?? '';
    else if (a.startsWith('--db=')) chosen = a.slice('--db='.length);
    else names.push(a);
  }
  if (chosen === undefined) return { names, dialects: DIALECTS };
  if (!DIALECTS.includes(chosen as BenchDialect)) {
    throw new Error(`--db takes ${DIALECTS.join(' or ')}, not "${chosen}"`);
  }
  return { names, dialects: [chosen as BenchDialect] };
}

/** `serve` and `worker` with their default `--concurrency`, whose pools the benches model. */
export const AS_SERVE = { role: 'serve+worker', jobConcurrency: 4 } as const;
export const AS_WORKER = { role: 'worker', jobConcurrency: 4 } as const;

/**
 * A fresh database opened and migrated, as the process a bench stands for opens it (its role,
 * which sizes a PostgreSQL pool; `checkpointThread` as serve and worker run); `close` closes and
 * drops it.
 */
export async function openBenchContext(
  dialect: BenchDialect,
  label: string,
  opts: { checkpointThread?: boolean; role?: ProcessRole; jobConcurrency?: number } = {},
): Promise<{ database: BenchDatabase; ctx: Context; close(): Promise<void> }> {
  const database = await freshDatabase(dialect, label);
  let ctx: Context;
  try {
    ctx = await openContext({ db: database.url, migrate: 'auto', ...opts });
  } catch (e) {
    await database.drop();
    throw e;
  }
  return {
    database,
    ctx,
    close: async () => {
      try {
        await ctx.close();
      } finally {
        await database.drop();
      }
    },
  };
}
