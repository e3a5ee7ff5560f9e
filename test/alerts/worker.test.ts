import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addChannel } from '../../src/app/alerts';
import { openContext } from '../../src/store';
import { cliScope, runCli } from '../cli/proc';
import { describeDialects } from '../helpers/db';
import { seedDestination } from '../helpers/seed';
import { waitFor } from '../jobs/helpers';
import { type HttpReceiver, startHttpReceiver } from './receivers';

const scope = cliScope();
let hook: HttpReceiver;
beforeAll(async () => {
  hook = await startHttpReceiver();
});
afterAll(() => hook.close());

describeDialects('alerts on the scheduler', (dialect) => {
  it('a worker evaluates alerts as it starts (then every minute) and sends them', async () => {
    const url = await scope.freshDb(dialect);
    const ctx = await openContext({ db: url, migrate: 'auto' });
    try {
      await addChannel(ctx, { kind: 'webhook', name: 'hook', url: `${hook.url}/worker/${dialect}` });
      await seedDestination(ctx, {
        id: 'dst_revoked',
        name: 'Revoked app',
        app_id: crypto.randomUUID(),
        api_url: 'http://127.0.0.1:9',
        api_key: 'k',
        status: 'paused',
        status_reason: 'OneSignal rejected the credentials (403): Access denied. Please include a valid API key',
      });
    } finally {
      await ctx.close();
    }
    const w = scope.start(['--db', url, 'worker', '--json'], {
      AMPSIGNAL_PUBLIC_URL: 'https://ampsignal.example.test',
    });
    await w.started;
    const got = await waitFor(() => hook.accepted().find((r) => r.path === `/worker/${dialect}`), {
      what: 'the alert at the receiver',
      timeoutMs: 30_000,
    });
    expect(got.body).toMatchObject({
      event: 'opened',
      alert: {
        condition: 'destination_paused:dst_revoked',
        link: 'https://ampsignal.example.test/',
        message: expect.stringContaining('Access denied. Please include a valid API key'),
      },
    });
    w.child.kill('SIGTERM');
    const done = await w.exited;
    expect(done.code).toBe(0);
    expect(hook.accepted().filter((r) => r.path === `/worker/${dialect}`)).toHaveLength(1);
  });
});

describeDialects('alerts across two worker processes', (dialect) => {
  it('two workers evaluating the same conditions send each alert once, and its resolution once', async () => {
    const url = await scope.freshDb(dialect);
    const ctx = await openContext({ db: url, migrate: 'auto' });
    const path = `/two-workers/${dialect}`;
    try {
      await addChannel(ctx, { kind: 'webhook', name: 'hook', url: `${hook.url}${path}` });
      for (const id of ['dst_a', 'dst_b'])
        await seedDestination(ctx, {
          id,
          name: `App ${id}`,
          app_id: crypto.randomUUID(),
          api_url: 'http://127.0.0.1:9',
          api_key: 'k',
          status: 'paused',
          status_reason: 'OneSignal rejected the credentials (403)',
        });
      // A slow receiver keeps one worker sending while the other looks at the same notifications.
      hook.delay(500);
      const workers = [0, 1].map(() => scope.start(['--db', url, 'worker', '--json']));
      await Promise.all(workers.map((w) => w.started));
      const mine = () => hook.accepted().filter((r) => r.path === path);
      await waitFor(() => mine().length >= 2, { what: 'both alerts', timeoutMs: 30_000 });
      await ctx.store.db.updateTable('destinations').set({ status: 'active', status_reason: null }).execute();
      // Each worker evaluates at start and then on the minute; both look within the next minute.
      await waitFor(() => mine().length >= 4, { what: 'both resolutions', timeoutMs: 90_000, intervalMs: 200 });
      // Another evaluation round by each worker's next minute would show any duplicate by now.
      await new Promise((r) => setTimeout(r, 1500));
      const events = mine()
        .map((r) => `${r.body.alert.condition} ${r.body.event}`)
        .sort();
      expect(events).toEqual([
        'destination_paused:dst_a opened',
        'destination_paused:dst_a resolved',
        'destination_paused:dst_b opened',
        'destination_paused:dst_b resolved',
      ]);
      for (const w of workers) w.child.kill('SIGTERM');
      for (const w of workers) expect((await w.exited).code).toBe(0);
      expect(mine()).toHaveLength(4);
    } finally {
      hook.delay(0);
      await ctx.close();
    }
  }, 150_000);
});

describe('alert settings at start', () => {
  it('a worker refuses a bad AMPSIGNAL_ALERT_* with one line and exit 2', async () => {
    const url = await scope.freshDb('sqlite');
    const r = await runCli(['--db', url, 'worker', '--migrate'], { AMPSIGNAL_ALERT_DEAD_LETTERS: 'lots' });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'ampsignal: AMPSIGNAL_ALERT_DEAD_LETTERS must be a number (got "lots")',
    ]);
  });
});
