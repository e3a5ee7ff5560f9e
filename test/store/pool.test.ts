import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openContext } from '../../src/store';
import { poolSettings } from '../../src/store/pool';
import { cliScope, runCli } from '../cli/proc';
import { PG_URL, SKIP_POSTGRES } from '../helpers/db';

const scope = cliScope();

describe('PostgreSQL pool settings by role', () => {
  it('sizes the pool to the role: a worker to its concurrency, serve for HTTP, a command small', () => {
    expect(poolSettings('cli', 1, {})).toEqual({ max: 3, statementTimeoutMs: 0, idleTimeoutMs: 10_000 });
    expect(poolSettings('serve', 4, {})).toEqual({ max: 10, statementTimeoutMs: 900_000, idleTimeoutMs: 10_000 });
    expect(poolSettings('worker', 4, {})).toEqual({ max: 10, statementTimeoutMs: 900_000, idleTimeoutMs: 90_000 });
    expect(poolSettings('worker', 16, {}).max).toBe(34);
    expect(poolSettings('serve+worker', 4, {}).max).toBe(20);
  });

  it('takes each setting from its environment variable over the role', () => {
    const env = {
      AMPSIGNAL_PG_POOL_SIZE: '7',
      AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS: '0',
      AMPSIGNAL_PG_IDLE_TIMEOUT_MS: '5000',
    };
    expect(poolSettings('worker', 4, env)).toEqual({ max: 7, statementTimeoutMs: 0, idleTimeoutMs: 5000 });
  });

  it('refuses a bad value with the variable, the rule and what it got', () => {
    expect(() => poolSettings('serve', 1, { AMPSIGNAL_PG_POOL_SIZE: '0' })).toThrow(
      'AMPSIGNAL_PG_POOL_SIZE must be at least 1 (got "0")',
    );
    expect(() => poolSettings('serve', 1, { AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS: '30s' })).toThrow(
      'AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS must be whole milliseconds (0 = none) (got "30s")',
    );
  });
});

/**
 * A database of its own (not a schema in the shared one): pg_stat_activity names the database of
 * each session, so the sessions counted are this test's processes, not another test's.
 */
async function ownDatabase(): Promise<{ url: string; sessions(app: string): Promise<number>; drop(): Promise<void> }> {
  const name = `t_pool_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  const u = new URL(PG_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async sessions(app) {
      const r = await admin.query<{ n: number }>(
        'select count(*)::int as n from pg_stat_activity where datname = $1 and application_name = $2',
        [name, app],
      );
      return r.rows[0]!.n;
    },
    async drop() {
      await admin.query(`drop database if exists "${name}" with (force)`);
      await admin.end();
    },
  };
}

describe.skipIf(SKIP_POSTGRES)('PostgreSQL pool settings in use', () => {
  it('a service role cancels a statement that runs past its statement timeout; a command has none', async () => {
    const url = await scope.freshDb('postgres');
    const saved = process.env.AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS;
    process.env.AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS = '200';
    let serve: Awaited<ReturnType<typeof openContext>> | undefined;
    try {
      serve = await openContext({ db: url, migrate: 'auto', role: 'serve' });
      await expect(sql`select pg_sleep(1)`.execute(serve.store.db)).rejects.toThrow(/statement timeout/);
    } finally {
      await serve?.close();
      if (saved === undefined) delete process.env.AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS;
      else process.env.AMPSIGNAL_PG_STATEMENT_TIMEOUT_MS = saved;
    }
    const worker = await openContext({ db: url, migrate: 'require', role: 'worker', jobConcurrency: 4 });
    const cli = await openContext({ db: url, migrate: 'require' });
    try {
      const shown = async (ctx: typeof cli) =>
        (await sql<{ statement_timeout: string }>`show statement_timeout`.execute(ctx.store.db)).rows[0]
          ?.statement_timeout;
      expect(await shown(worker)).toBe('15min');
      expect(await shown(cli)).toBe('0');
      expect(worker.store.pgPool?.options.max).toBe(10);
      expect(cli.store.pgPool?.options.max).toBe(3);
    } finally {
      await worker.close();
      await cli.close();
    }
  });

  it('`worker` and `serve --no-worker` connect as their role, visible in pg_stat_activity', async () => {
    const db = await ownDatabase();
    try {
      expect((await runCli(['--db', db.url, 'migrate'])).code).toBe(0);
      const w = scope.start(['--db', db.url, 'worker', '--json']);
      const s = scope.start(['--db', db.url, 'serve', '--no-worker', '--port', '0', '--json']);
      await Promise.all([w.started, s.started]);
      expect(await db.sessions('ampsignal worker')).toBeGreaterThan(0);
      expect(await db.sessions('ampsignal serve')).toBeGreaterThan(0);
      for (const p of [w, s]) p.child.kill('SIGTERM');
      await Promise.all([w.exited, s.exited]);
    } finally {
      await db.drop();
    }
  });

  it('a bad pool setting stops `worker` at start with one line and exit 2', async () => {
    const url = await scope.freshDb('postgres');
    const r = await runCli(['--db', url, 'worker', '--migrate'], { AMPSIGNAL_PG_POOL_SIZE: 'lots' });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'ampsignal: AMPSIGNAL_PG_POOL_SIZE must be a whole number of connections (got "lots")',
    ]);
  });
});
