import { describe, expect, it } from 'vitest';
import { addSource } from '../../src/app/sources';
import { openContext } from '../../src/store';
import { VERSION } from '../../src/telemetry/version';
import { describeDialects, SKIP_POSTGRES } from '../helpers/db';
import { cliScope, runCli } from './proc';

const scope = cliScope();

describe('ampsignal serve on a fresh SQLite file', () => {
  it('creates and migrates the database itself (only this process uses it) and says its version on /healthz', async () => {
    const url = await scope.freshDb('sqlite');
    const s = scope.start(['--db', url, 'serve', '--port', '0', '--json']);
    const started = await s.started;
    expect(started.status).toBe('listening');
    const res = await fetch(`${started.url}/healthz`);
    expect(await res.json()).toEqual({ status: 'ok', version: VERSION, database: 'sqlite' });
    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
  });
});

describe('ampsignal serve on PostgreSQL', () => {
  it.skipIf(SKIP_POSTGRES)(
    'refuses a database with pending migrations (one line, exit 2): `ampsignal migrate` is explicit there',
    async () => {
      const url = await scope.freshDb('postgres');
      const r = await runCli(['--db', url, 'serve', '--port', '0']);
      expect(r.code).toBe(2);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/pending migration/);
    },
  );
});

describeDialects('ampsignal serve', (dialect) => {
  it('serves /healthz and exits 0 on SIGTERM', async () => {
    const url = await scope.freshDb(dialect);
    const args = ['--db', url, 'serve', '--port', '0', '--migrate', '--json'];
    if (dialect === 'postgres') args.push('--no-worker');
    const s = scope.start(args);
    const started = await s.started;
    expect(started.status).toBe('listening');
    expect(started.worker).toBe(dialect === 'sqlite'); // embedded mode always works its jobs
    const res = await fetch(`${started.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', version: VERSION, database: dialect });

    s.child.kill('SIGTERM');
    const done = await s.exited;
    expect(done.code).toBe(0);
    expect(done.stderr).toBe('');
  });
});

describe('ampsignal serve: SIGTERM during a webhook burst [sqlite]', () => {
  it('every webhook answered 200 is stored, and the process exits 0', async () => {
    const url = await scope.freshDb('sqlite');
    const ctx = await openContext({ db: url, migrate: 'auto' });
    const source = await addSource(ctx, {
      name: 'burst',
      api_key: 'a',
      secret_key: 's',
      api_url: 'http://127.0.0.1:9',
    });
    const s = scope.start(['--db', url, 'serve', '--port', '0', '--json']);
    const started = await s.started;
    const hook = `${started.url}/hooks/amplitude/cohorts/${source.id}`;
    const post = (i: number) =>
      fetch(hook, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${source.webhook_secret}` },
        body: JSON.stringify({
          cohort_id: 'coh_burst',
          cohort_name: 'Burst',
          in_cohort: true,
          computed_time: String(1_700_000_000 + i),
          message_id: `msg-${i}`,
          users: [{ user_id: `u${i}` }],
        }),
      }).then(
        async (r) => ({ i, status: r.status, body: await r.text() }),
        () => ({ i, status: 0, body: '' }), // refused after the listener closed: Amplitude retries these
      );
    const first = post(0);
    const burst = Array.from({ length: 40 }, (_, i) => post(i + 1));
    expect((await first).status).toBe(200);
    s.child.kill('SIGTERM');
    const results = await Promise.all(burst);
    const done = await s.exited;
    expect(done.code).toBe(0);

    const ok = [0, ...results.filter((r) => r.status === 200).map((r) => r.i)];
    expect(results.every((r) => r.status === 200 || r.status === 0 || r.status === 503)).toBe(true);
    const stored = await ctx.store.db.selectFrom('webhook_inbox').select('message_id').execute();
    const ids = new Set(stored.map((r) => r.message_id));
    for (const i of ok) expect(ids.has(`msg-${i}`)).toBe(true);
    await ctx.close();
  });
});

describe('ampsignal serve flags', () => {
  it('rejects a bad --port with a readable line', async () => {
    const r = await runCli(['serve', '--port', '70000']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port: must be at most 65535/);
  });
});
