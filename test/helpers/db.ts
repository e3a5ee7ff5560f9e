import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe } from 'vitest';
import { type Context, openContext } from '../../src/store';

export type TestDialect = 'sqlite' | 'postgres';

/** The PostgreSQL every machine here runs (trust auth, database `test`); overridable. */
export const PG_URL = process.env.AMPSIGNAL_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let pgUp: Promise<boolean> | undefined;
export function postgresAvailable(): Promise<boolean> {
  pgUp ??= (async () => {
    const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.end();
      return true;
    } catch {
      return false;
    }
  })();
  return pgUp;
}

/** Known once per test file, so a describe block can be skipped (locally) before it runs. */
export const PG_AVAILABLE = await postgresAvailable();

/** Locally a missing PostgreSQL skips its tests; under CI=true they run, and fail. */
export const SKIP_POSTGRES = !PG_AVAILABLE && process.env.CI !== 'true';

/** A describe block per dialect, `[sqlite]` / `[postgres]` in its name, the postgres one skipped by SKIP_POSTGRES. */
export function describeDialects(name: string, body: (dialect: TestDialect) => void): void {
  for (const dialect of ['sqlite', 'postgres'] as const) {
    describe.skipIf(dialect === 'postgres' && SKIP_POSTGRES)(`${name} [${dialect}]`, () => body(dialect));
  }
}

/**
 * A fresh, isolated database URL: a temp SQLite file, or a new schema in the test PostgreSQL.
 * `cleanup` removes it. Under CI=true a missing PostgreSQL is an error, never a skip.
 */
export async function freshDatabaseUrl(dialect: TestDialect): Promise<{ url: string; cleanup: () => Promise<void> }> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'ampsignal-test-'));
    return {
      url: `sqlite:${join(dir, 'test.db')}`,
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (!(await postgresAvailable())) throw new Error(`PostgreSQL is not reachable at ${PG_URL}`);
  const schema = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const sep = PG_URL.includes('?') ? '&' : '?';
  return {
    url: `${PG_URL}${sep}schema=${schema}`,
    cleanup: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.query(`DROP SCHEMA IF EXISTS "${schema}_gw" CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

export interface TestDb {
  dialect: TestDialect;
  url: string;
  ctx: Context;
}

/**
 * Runs a describe block once per dialect, each with its own fresh database opened in
 * beforeAll. Locally a missing PostgreSQL skips the postgres half; under CI=true it fails.
 */
export function describeEachDialect(name: string, body: (db: () => TestDb) => void): void {
  describeDialects(name, (dialect) => {
    let current: TestDb | undefined;
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      const fresh = await freshDatabaseUrl(dialect);
      cleanup = fresh.cleanup;
      const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
      current = { dialect, url: fresh.url, ctx };
    });
    afterAll(async () => {
      await current?.ctx.close();
      await cleanup?.();
    });
    body(() => {
      if (!current) throw new Error('test database was not opened');
      return current;
    });
  });
}
