import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createJobQueue } from '../../src/jobs';
import { graphileSchema } from '../../src/jobs/graphile-queue';
import { openContext } from '../../src/store';
import { describeDialects, SKIP_POSTGRES } from '../helpers/db';
import { waitFor } from '../jobs/helpers';
import { cliScope, runCli } from './proc';

const scope = cliScope();

describeDialects('ampsignal worker', (dialect) => {
  it('refuses a database with pending migrations (one line, exit 2)', async () => {
    const url = await scope.freshDb(dialect);
    const r = await runCli(['--db', url, 'worker']);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/pending migration.*ampsignal migrate.*--migrate/);
  });

  it('works jobs added by another process and stops cleanly on SIGTERM', async () => {
    const url = await scope.freshDb(dialect);
    const w = scope.start(['--db', url, 'worker', '--migrate', '--concurrency', '2', '--json']);
    const started = await w.started;
    expect(started.status).toBe('started');
    expect(started.queue).toBe(dialect === 'sqlite' ? 'sqlite' : 'graphile');

    const ctx = await openContext({ db: url, migrate: 'require' });
    const jobs = createJobQueue(ctx);
    try {
      await jobs.add('schedule.tick', {}, { jobKey: 'test-tick' });
      await waitFor(async () => (await jobs.list()).length === 0, {
        what: 'the worker process to run the job',
        timeoutMs: 20_000,
      });
    } finally {
      await jobs.stop();
      await ctx.close();
    }

    w.child.kill('SIGTERM');
    const done = await w.exited;
    expect(done.code).toBe(0);
    expect(done.stderr).toBe('');
  });
});

describe.skipIf(SKIP_POSTGRES)('ampsignal worker on PostgreSQL', () => {
  it('exits 1 with one line when a newer version migrates its job schema under it', async () => {
    const url = await scope.freshDb('postgres');
    const w = scope.start(['--db', url, 'worker', '--migrate', '--json']);
    await w.started;
    const ctx = await openContext({ db: url, migrate: 'require' });
    try {
      if (ctx.store.target.dialect !== 'postgres') throw new Error('postgres only');
      // What a newer graphile-worker does when it migrates this schema: record the migration, then announce it.
      await sql`insert into ${sql.table(`${graphileSchema(ctx.store.target)}.migrations`)} (id, breaking) values (999999, true)`.execute(
        ctx.store.db,
      );
      await sql`select pg_notify('worker:migrate', '{"migrationNumber":999999,"breaking":true}')`.execute(ctx.store.db);
    } finally {
      await ctx.close();
    }
    const done = await w.exited;
    expect(done.code).toBe(1);
    expect(done.stderr.trimEnd().split('\n')).toEqual([
      expect.stringMatching(/^ampsignal: the job queue schema .* was migrated .* restart this process/),
    ]);
  });
});

describe('ampsignal worker flags', () => {
  it('refuses a bad AMPSIGNAL_RETENTION_DAYS at start with one line and exit 2', async () => {
    const url = await scope.freshDb('sqlite');
    const r = await runCli(['--db', url, 'worker', '--migrate'], { AMPSIGNAL_RETENTION_DAYS: 'forever' });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'ampsignal: AMPSIGNAL_RETENTION_DAYS must be a number of days (got "forever")',
    ]);
  });

  it('rejects a bad --concurrency with a readable line', async () => {
    const r = await runCli(['worker', '--concurrency', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency: must be a whole number/);
  });
});
