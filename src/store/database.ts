import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { AmpError } from '../errors';
import { type Checkpointer, startCheckpointer } from './checkpointer';
import type { Engine } from './dialect/engine';
import { postgresEngine } from './dialect/postgres';
import { sqliteEngine } from './dialect/sqlite';
import { ScopedPostgresDialect } from './pg-introspector';
import { type ProcessRole, poolSettings } from './pool';
import type { DB } from './schema';
import { type DatabaseTarget, parseDatabaseUrl, redactUrl } from './url';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<DB>;
  dialect: Dialect;
  /** What this database can do and its bulk writes (dialect/engine.ts). */
  engine: Engine;
  target: DatabaseTarget;
  /** Redacted URL, safe to print. */
  displayUrl: string;
  /** Present on PostgreSQL: the pool, for graphile-worker and LISTEN/NOTIFY. */
  pgPool?: pg.Pool;
  /** Present on a SQLite file: the thread that checkpoints its WAL (checkpointer.ts). */
  checkpointer?: Checkpointer;
  close(): Promise<void>;
}

// PostgreSQL returns int8 and numeric as strings; every counter and timestamp here is an
// epoch-millisecond or count well inside 2^53, so numbers are safe and keep both dialects equal.
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/**
 * A new database file is created empty with mode 0600 (its folder 0700) before SQLite opens it:
 * it holds user ids and encrypted keys, and SQLite gives the -wal and -shm files the mode of the
 * database file. An existing file keeps the mode its owner gave it.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

export async function openStore(
  url: string,
  opts: { checkpointThread?: boolean; role?: ProcessRole; jobConcurrency?: number } = {},
): Promise<Store> {
  const target = parseDatabaseUrl(url);
  const displayUrl = redactUrl(url);
  if (target.dialect === 'sqlite') {
    let handle: BetterSqlite3.Database;
    try {
      if (target.path !== ':memory:') createPrivately(target.path);
      handle = new BetterSqlite3(target.path);
    } catch (e) {
      throw new AmpError('database_unreachable', `cannot open SQLite database ${target.path}: ${(e as Error).message}`);
    }
    handle.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a process crash (what we promise); only an OS crash can
    // lose the last commits, and it is several times faster for the ledger's bulk writes.
    handle.pragma('synchronous = NORMAL');
    handle.pragma('busy_timeout = 10000');
    handle.pragma('foreign_keys = ON');
    const checkpointer =
      opts.checkpointThread && target.path !== ':memory:' ? startCheckpointer(handle, target.path) : undefined;
    const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: handle }) });
    return {
      db,
      dialect: 'sqlite',
      engine: sqliteEngine(handle, db),
      target,
      displayUrl,
      ...(checkpointer ? { checkpointer } : {}),
      close: async () => {
        await checkpointer?.stop();
        await db.destroy();
      },
    };
  }

  const role = opts.role ?? 'cli';
  const sized = poolSettings(role, opts.jobConcurrency);
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: sized.max,
    idleTimeoutMillis: sized.idleTimeoutMs,
    connectionTimeoutMillis: 10_000,
    // pg_stat_activity tells the roles apart; an application_name in the URL or PGAPPNAME wins.
    fallback_application_name: `ampsignal ${role}`,
    types: pgTypes,
    ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}),
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {});
  if (sized.statementTimeoutMs > 0) {
    // A SET queued ahead of a new connection's first query, not a startup parameter: PgBouncer
    // refuses startup parameters it does not track. Should it fail, the connection is broken and
    // the query behind it says so.
    const setTimeout = `SET statement_timeout = ${sized.statementTimeoutMs}`;
    pool.on('connect', (client) => void client.query(setTimeout).catch(() => {}));
  }
  try {
    const client = await pool.connect();
    try {
      if (target.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS "${target.schema}"`);
    } finally {
      client.release();
    }
  } catch (e) {
    await pool.end().catch(() => {});
    throw describePgConnectError(target, e);
  }
  const db = new Kysely<DB>({ dialect: new ScopedPostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    engine: postgresEngine(db, pool),
    target,
    displayUrl,
    pgPool: pool,
    close: async () => {
      await db.destroy();
    },
  };
}

function describePgConnectError(target: Extract<DatabaseTarget, { dialect: 'postgres' }>, e: unknown): AmpError {
  let where = 'PostgreSQL';
  try {
    const u = new URL(target.connectionString);
    where = `PostgreSQL at ${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    /* keep the generic name */
  }
  const err = e as { code?: string; message?: string };
  const reason = err.code ? `${err.code}: ${redactUrl(err.message ?? '')}` : redactUrl(err.message ?? String(e));
  return new AmpError('database_unreachable', `cannot connect to ${where}: ${reason}`);
}

export type PostgresTarget = Extract<DatabaseTarget, { dialect: 'postgres' }>;

/** The PostgreSQL connection settings of a store, for what only PostgreSQL has (graphile-worker); `what` names it in the refusal. */
export function postgresTargetOf(store: Pick<Store, 'target'>, what: string): PostgresTarget {
  if (store.target.dialect !== 'postgres') throw new AmpError('internal', `${what} needs PostgreSQL`);
  return store.target;
}

/** How a command reports the database it used: the redacted URL and which database it is. */
export function describeStore(store: Store): { database: string; dialect: Dialect } {
  return { database: store.displayUrl, dialect: store.dialect };
}

export { sql };
