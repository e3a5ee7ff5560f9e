import { describe, expect, it } from 'vitest';
import { createJobQueue } from '../../src/jobs';
import { openContext } from '../../src/store';
import { describeDialects } from '../helpers/db';
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
      await waitFor(async () => (await jobs.list()).length === 0, { what: 'the worker process to run the job', timeoutMs: 20_000 });
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

describe('ampsignal worker flags', () => {
  it('rejects a bad --concurrency with a readable line', async () => {
    const r = await runCli(['worker', '--concurrency', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency: must be a whole number/);
  });
});
