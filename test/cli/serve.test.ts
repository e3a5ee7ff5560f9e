import { afterEach, describe, expect, it } from 'vitest';
import { freshDatabaseUrl, PG_AVAILABLE } from '../helpers/db';
import { runCli, startCli, type LongRunning } from './proc';

const cleanups: Array<() => Promise<void>> = [];
const children: LongRunning[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  const skip = dialect === 'postgres' && !PG_AVAILABLE && process.env.CI !== 'true';
  describe.skipIf(skip)(`ampsignal serve [${dialect}]`, () => {
    it('refuses a database with pending migrations (one line, exit 2)', async () => {
      const { url, cleanup } = await freshDatabaseUrl(dialect);
      cleanups.push(cleanup);
      const r = await runCli(['--db', url, 'serve', '--port', '0']);
      expect(r.code).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/pending migration/);
    });

    it('serves /healthz and exits 0 on SIGTERM', async () => {
      const { url, cleanup } = await freshDatabaseUrl(dialect);
      cleanups.push(cleanup);
      const args = ['--db', url, 'serve', '--port', '0', '--migrate', '--json'];
      if (dialect === 'postgres') args.push('--no-worker');
      const s = startCli(args);
      children.push(s);
      const started = await s.started;
      expect(started.status).toBe('listening');
      expect(started.worker).toBe(dialect === 'sqlite'); // embedded mode always works its jobs
      const res = await fetch(`${started.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', database: dialect });

      s.child.kill('SIGTERM');
      const done = await s.exited;
      expect(done.code).toBe(0);
      expect(done.stderr).toBe('');
    });

    it('rejects a bad --port with a readable line', async () => {
      const r = await runCli(['serve', '--port', '70000']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--port: must be at most 65535/);
    });
  });
}
