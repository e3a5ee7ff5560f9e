import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { openStore } from '../../src/store/database';
import { sqliteHandleOf } from '../../src/store/dialect/sqlite';
import { migrateToLatest, pendingMigrations } from '../../src/store/migrate';
import { SecretBox } from '../../src/store/secrets';
import { parseDatabaseUrl, redactUrl } from '../../src/store/url';
import { OPEN_OUTCOME } from '../../src/sync/runs';
import { describeEachDialect, freshDatabaseUrl, PG_URL, SKIP_POSTGRES } from '../helpers/db';

describeEachDialect('store', (db) => {
  it('applies every migration and has none pending', async () => {
    expect(await pendingMigrations(db().ctx.store)).toEqual([]);
  });

  it('round-trips rows with numbers, not strings, for bigint columns', async () => {
    const { store } = db().ctx;
    await store.db
      .insertInto('cohorts')
      .values({
        id: 'c1',
        source_id: null,
        name: 'one',
        origin: 'file',
        size: 3,
        last_computed: 1_700_000_000_000,
        created_at: 1,
        updated_at: 2,
      })
      .execute();
    const row = await store.db.selectFrom('cohorts').selectAll().where('id', '=', 'c1').executeTakeFirstOrThrow();
    expect(row.last_computed).toBe(1_700_000_000_000);
    expect(typeof row.size).toBe('number');
  });
});

describe('database URLs', () => {
  it('never shows a password', () => {
    expect(redactUrl('postgres://app:s3cret@db.example:5432/x')).toBe('postgres://app:***@db.example:5432/x');
  });

  it('rejects an unknown scheme with the forms it accepts', () => {
    expect(() => parseDatabaseUrl('mysql://x')).toThrow(/use sqlite:PATH or postgres:\/\//);
  });

  it('reports an unreachable PostgreSQL by host and port, without the password', async () => {
    const err = await openStore('postgres://app:hunter2@127.0.0.1:1/nowhere').catch((e) => e);
    expect(err.code).toBe('database_unreachable');
    expect(err.message).toContain('127.0.0.1:1');
    expect(err.message).not.toContain('hunter2');
  });

  it('a fresh database needs its migrations, and migrating twice is a no-op', async () => {
    const fresh = await freshDatabaseUrl('sqlite');
    const store = await openStore(fresh.url);
    expect((await pendingMigrations(store)).length).toBeGreaterThan(0);
    await migrateToLatest(store);
    expect(await migrateToLatest(store)).toEqual([]);
    await store.close();
    await fresh.cleanup();
  });

  it('serve/worker mode refuses a database with pending migrations', async () => {
    const fresh = await freshDatabaseUrl('sqlite');
    await expect(openContext({ db: fresh.url, migrate: 'require' })).rejects.toThrow(/pending migration/);
    await fresh.cleanup();
  });
});

describe('secrets at rest', () => {
  it('encrypts with a fresh IV each time and decrypts back', () => {
    const box = new SecretBox(randomBytes(32));
    const a = box.encrypt('os_v2_app_key');
    const b = box.encrypt('os_v2_app_key');
    expect(a).not.toBe(b);
    expect(a).not.toContain('os_v2_app_key');
    expect(box.decrypt(a)).toBe('os_v2_app_key');
  });

  it('refuses to decrypt with another key, saying why', () => {
    const sealed = new SecretBox(randomBytes(32)).encrypt('k');
    expect(() => new SecretBox(randomBytes(32)).decrypt(sealed)).toThrow(/cannot be decrypted with this key/);
  });
});

describe.skipIf(SKIP_POSTGRES)('migrations beside other schemas [postgres]', () => {
  // Kysely's introspector reads every schema of the database; one dropped or altered by another
  // client in that instant failed our migration with `schema "…" does not exist` or `column "…" of
  // relation "…" does not exist` (both seen in CI, the second beside graphile-worker migrating).
  it('migrate succeeds while other clients alter and drop their schemas', async () => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    const prefix = `race_${process.pid}_`;
    const others = Array.from({ length: 80 }, (_, i) => `${prefix}${i}`);
    try {
      for (const s of others) {
        await admin.query(
          `CREATE SCHEMA "${s}"; CREATE TABLE "${s}".a (id serial primary key, b text); CREATE TABLE "${s}".c (id serial primary key)`,
        );
      }
      let dropping = true;
      const dropper = (async () => {
        for (const s of others) {
          await admin.query(
            `ALTER TABLE "${s}".a RENAME COLUMN b TO b2; ALTER TABLE "${s}".a DROP COLUMN b2; ALTER TABLE "${s}".c RENAME TO c2`,
          );
          await admin.query(`DROP SCHEMA "${s}" CASCADE`);
        }
      })().finally(() => (dropping = false));
      const outcomes: string[] = [];
      while (dropping || outcomes.length < 3) {
        const fresh = await freshDatabaseUrl('postgres');
        const store = await openStore(fresh.url);
        outcomes.push(
          await migrateToLatest(store).then(
            () => 'ok',
            (e: Error) => e.message,
          ),
        );
        await store.close();
        await fresh.cleanup();
      }
      await dropper;
      expect(outcomes.filter((o) => o !== 'ok')).toEqual([]);
    } finally {
      for (const s of others) await admin.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await admin.end();
    }
  }, 120_000);
});

describe('ledger indexes [sqlite]', () => {
  it('reads a run’s open ledger rows through the partial index, whose condition SQLite needs spelled out', async () => {
    const fresh = await freshDatabaseUrl('sqlite');
    const ctx = await openContext({ db: fresh.url, migrate: 'auto' });
    try {
      const plan = (q: { sql: string; parameters: readonly unknown[] }) =>
        (
          sqliteHandleOf(ctx.store)!
            .prepare(`EXPLAIN QUERY PLAN ${q.sql}`)
            .all(...q.parameters) as Array<{ detail: string }>
        )
          .map((r) => r.detail)
          .join(' | ');
      const open = ctx.store.db
        .selectFrom('ledger')
        .select('outcome')
        .where('run_id', '=', 'run_x')
        .where(OPEN_OUTCOME)
        .compile();
      expect(plan(open)).toMatch(/USING (COVERING )?INDEX ledger_run_open/);
      // Without the condition the partial index cannot serve the query: a full scan.
      const bare = ctx.store.db.selectFrom('ledger').select('outcome').where('run_id', '=', 'run_x').compile();
      expect(plan(bare)).not.toMatch(/ledger_run_open/);
    } finally {
      await ctx.close();
      await fresh.cleanup();
    }
  });
});
