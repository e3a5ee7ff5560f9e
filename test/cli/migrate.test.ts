import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { describeDialects, PG_URL } from '../helpers/db';
import { cliScope, closedPort, runCli } from './proc';

const scope = cliScope();

describeDialects('ampsignal migrate', (dialect) => {
  it('applies every migration to a fresh database, then has nothing left to do', async () => {
    const url = await scope.freshDb(dialect);
    const first = await runCli(['--db', url, 'migrate', '--json']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const out = JSON.parse(first.stdout);
    expect(out.dialect).toBe(dialect);
    expect(out.applied[0]).toBe('001_initial');

    const again = await runCli(['migrate'], { AMPSIGNAL_DATABASE_URL: url });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/is up to date/);

    if (dialect === 'postgres') {
      // graphile-worker's tables are installed too, beside the isolated schema.
      const schema = new URL(url).searchParams.get('schema');
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      try {
        const r = await c.query(`select count(*)::int as n from information_schema.tables where table_schema = $1`, [
          `${schema}_gw`,
        ]);
        expect(r.rows[0].n).toBeGreaterThan(0);
      } finally {
        await c.end();
      }
    }
  });
});

describe('unreachable database', () => {
  for (const command of [['migrate'], ['worker'], ['serve', '--port', '0']]) {
    it(`${command[0]}: one line naming host:port, never the password, exit 2`, async () => {
      const port = await closedPort();
      const r = await runCli(['--db', `postgres://alice:hunter2secret@127.0.0.1:${port}/ampsignal`, ...command]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`127.0.0.1:${port}`);
      expect(r.stderr).not.toContain('hunter2secret');
    });
  }

  it('a malformed URL is one line too', async () => {
    const r = await runCli(['--db', 'mysql://localhost/x', 'migrate']);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/sqlite:PATH or postgres:/);
  });
});
