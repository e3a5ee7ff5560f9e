import { afterEach, describe, expect, it } from 'vitest';
import { createJobQueue } from '../../src/jobs';
import { openContext } from '../../src/store';
import { freshDatabaseUrl, PG_AVAILABLE } from '../helpers/db';
import { waitFor } from '../jobs/helpers';
import { runCli, startCli, type LongRunning } from './proc';

const cleanups: Array<() => Promise<void>> = [];
const children: LongRunning[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  const skip = dialect === 'postgres' && !PG_AVAILABLE && process.env.CI !== 'true';
  describe.skipIf(skip)(`ampsignal worker [${dialect}]`, () => {
    it('refuses a database with pending migrations (one line, exit 2)', async () => {
      const { url, cleanup } = await freshDatabaseUrl(dialect);
      cleanups.push(cleanup);
      const r = await runCli(['--db', url, 'worker']);
      expect(r.code).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/pending migration.*ampsignal migrate.*--migrate/);
    });

    it('works jobs added by another process and stops cleanly on SIGTERM', async () => {
      const { url, cleanup } = await freshDatabaseUrl(dialect);
      cleanups.push(cleanup);
      const w = startCli(['--db', url, 'worker', '--migrate', '--concurrency', '2', '--json']);
      children.push(w);
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
}

describe('ampsignal worker flags', () => {
  it('rejects a bad --concurrency with a readable line', async () => {
    const r = await runCli(['worker', '--concurrency', 'lots']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--concurrency: must be a whole number/);
  });
});
