import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OneSignalClient } from '../../src/connectors/onesignal/client';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal';
import { startCli } from '../cli/proc';
import { caught } from '../helpers/errors';

// Each test gets its own app (ids are process-wide limiter keys), on one shared emulator.
describe('OneSignalClient against the emulator', () => {
  let emu: OneSignalEmulator;
  const apps = Array.from({ length: 9 }, () => ({ appId: randomUUID(), apiKey: `key-${randomUUID()}` }));
  const client = (i: number, extra: Partial<ConstructorParameters<typeof OneSignalClient>[0]> = {}) =>
    new OneSignalClient({ appId: apps[i]!.appId, apiKey: apps[i]!.apiKey, apiUrl: emu.url, ...extra });

  beforeAll(async () => {
    emu = await startOneSignalEmulator({ apps, users: { mode: 'seeded', count: 3000 } });
  });
  afterAll(async () => {
    await emu?.close();
  });

  it('adds and deletes tags, and checks credentials', async () => {
    const c = client(0);
    await c.testConnection();
    await c.updateTags('user-1', { amp_cohort_a: '1', amp_cohort_b: '1' });
    expect(emu.state.getUser('user-1', apps[0]!.appId)).toEqual({ amp_cohort_a: '1', amp_cohort_b: '1' });
    await c.updateTags('user-1', { amp_cohort_a: '' });
    expect(emu.state.getUser('user-1', apps[0]!.appId)).toEqual({ amp_cohort_b: '1' });
    expect(c.requests).toBe(3);
  });

  it('a wrong key is vendor_auth carrying the vendor message; a wrong app id too', async () => {
    const bad = client(1, { apiKey: 'wrong' });
    const e = await caught(bad.testConnection());
    expect(e.code).toBe('vendor_auth');
    expect(e.kind).toBe('destination_fatal');
    expect(e.message).toMatch(/access denied/i);
    const e2 = await caught(bad.updateTags('user-2', { t: '1' }));
    expect(e2.code).toBe('vendor_auth');

    const noApp = new OneSignalClient({ appId: randomUUID(), apiKey: 'k', apiUrl: emu.url });
    const e3 = await caught(noApp.testConnection());
    expect(e3.kind).toBe('destination_fatal');
    expect(e3.message).toContain('app_id not found');
  });

  it('an unknown user is vendor_not_found (skip); over 100 tags is refused before sending', async () => {
    const c = client(2);
    const e = await caught(c.updateTags('nobody-here', { amp_cohort_a: '1' }));
    expect(e.code).toBe('vendor_not_found');
    expect(e.kind).toBe('skip');
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`t${i}`, '1']));
    const e2 = await caught(c.updateTags('user-3', many));
    expect(e2.code).toBe('invalid_input');
    expect(c.requests).toBe(1);
  });

  it('5xx and dropped connections are retryable errors', async () => {
    const c = client(3);
    try {
      emu.setFaults({ errorRate: 1 });
      const e = await caught(c.updateTags('user-4', { a: '1' }));
      expect(e.kind).toBe('retryable');
      expect(e.status).toBeGreaterThanOrEqual(500);
      emu.setFaults({ errorRate: 0, dropRate: 1 });
      const e2 = await caught(c.updateTags('user-5', { a: '1' }));
      expect(e2.kind).toBe('retryable');
      expect(e2.code).toBe('network');
    } finally {
      emu.setFaults({ errorRate: 0, dropRate: 0 });
    }
  });

  it('creates a segment on the tag, name cut to 128 characters, and lists it', async () => {
    const c = client(4);
    const long = `Amplitude: ${'x'.repeat(200)}`;
    const { id } = await c.createSegment(long, { field: 'tag', key: 'amp_cohort_42', relation: '=', value: '1' });
    expect(id).toBeTruthy();
    const segs = emu.state.segments(apps[4]!.appId);
    expect(segs).toHaveLength(1);
    expect(segs[0]!.id).toBe(id);
    expect(segs[0]!.name).toHaveLength(128);
    expect(segs[0]!.filters).toEqual([{ field: 'tag', key: 'amp_cohort_42', relation: '=', value: '1' }]);
    const listed = await c.listSegments();
    expect(listed.segments.map((s) => s.id)).toContain(id);
    await c.deleteSegment(id);
    await c.deleteSegment(id); // already gone: not an error
    expect(emu.state.segments(apps[4]!.appId)).toHaveLength(0);
  });

  it('two updates to one user within a second are spaced, not rate limited', async () => {
    const c = client(5);
    const started = performance.now();
    await Promise.all([c.updateTags('user-7', { a: '1' }), c.updateTags('user-7', { b: '1' })]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1000);
    const s = emu.state.stats().byApp[apps[5]!.appId]!;
    expect(s.rateLimited).toBe(0);
    expect(s.perUserViolations).toBe(0);
    expect(emu.state.getUser('user-7', apps[5]!.appId)).toEqual({ a: '1', b: '1' });
  });

  it('a burst of 3,000 updates at a 1,000/s app limit gets no 429 and stays under the limit', async () => {
    // The emulator runs in its own process here, as OneSignal would: in this process its
    // handler shares our event loop, so our own stalls would bunch its arrival times.
    const app = { appId: randomUUID(), apiKey: `key-${randomUUID()}` };
    const emuProc = startCli([
      'emulator',
      'onesignal',
      '--port',
      '0',
      '--app',
      `${app.appId}:${app.apiKey}`,
      '--seed-count',
      '3000',
      '--rate-limit',
      '1000',
      '--json',
    ]);
    try {
      const { url } = (await emuProc.started) as { url: string };
      const c = new OneSignalClient({ appId: app.appId, apiKey: app.apiKey, apiUrl: url });
      await Promise.all(Array.from({ length: 3000 }, (_, i) => c.updateTags(`user-${i}`, { amp_cohort_burst: '1' })));
      const state = (await (await fetch(`${url}/_emulator/state?app_id=${app.appId}&summary=1`)).json()) as {
        stats: { byApp: Record<string, { rateLimited: number; accepted: number; maxPerSecond: number }> };
      };
      const s = state.stats.byApp[app.appId]!;
      expect(s.rateLimited).toBe(0);
      expect(s.accepted).toBe(3000);
      expect(s.maxPerSecond).toBeLessThanOrEqual(1000);
      expect(c.requests).toBe(3000);
      const user = (await (await fetch(`${url}/_emulator/users/${app.appId}/user-2999`)).json()) as Record<
        string,
        unknown
      >;
      expect(JSON.stringify(user)).toContain('amp_cohort_burst');
    } finally {
      emuProc.child.kill('SIGTERM');
      await emuProc.exited;
    }
  });

  it('a 429 (vendor limit below ours) pauses the app and retries without throwing', async () => {
    emu.setLimits({ rateLimitPerSecond: 100 });
    try {
      const c = client(7, { rateLimitPerSecond: 1000 });
      await Promise.all(Array.from({ length: 300 }, (_, i) => c.updateTags(`user-${i}`, { amp_cohort_429: '1' })));
      const s = emu.state.stats().byApp[apps[7]!.appId]!;
      expect(s.rateLimited).toBeGreaterThan(0);
      expect(s.accepted).toBe(300);
      // Every 429 was retried inside the client and counted as a request.
      expect(c.requests).toBe(300 + s.rateLimited);
      expect(c.limiter.stats().rateLimited).toBeGreaterThan(0);
      expect(c.limiter.stats().currentRate).toBeLessThan(1000);
      expect(emu.state.getUser('user-299', apps[7]!.appId)).toEqual({ amp_cohort_429: '1' });
    } finally {
      emu.setLimits({ rateLimitPerSecond: 1000 });
    }
  });

  it('once a 429 is read, nothing more is sent to the app until its Retry-After has passed', async () => {
    // 429s at random among a burst of updates, with requests queued behind each: the answer's
    // limiter slot must not let a queued request go before the app is paused.
    emu.setFaults({ throttleRate: 0.05, retryAfterSeconds: 1 });
    try {
      const c = client(8, { rateLimitPerSecond: 1000 });
      let sentWhilePaused = 0;
      const onRequest = () => {
        if (Date.now() < c.limiter.stats().pausedUntil) sentWhilePaused++;
      };
      await Promise.all(
        Array.from({ length: 400 }, (_, i) => c.updateTags(`user-${i}`, { amp_cohort_pause: '1' }, { onRequest })),
      );
      expect(emu.state.stats().byApp[apps[8]!.appId]!.accepted).toBe(400);
      expect(c.limiter.stats().rateLimited).toBeGreaterThan(0);
      expect(sentWhilePaused).toBe(0);
    } finally {
      emu.setFaults({ throttleRate: 0 });
    }
  }, 60_000);
});
