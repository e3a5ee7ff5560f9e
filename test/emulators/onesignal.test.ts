import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as OneSignal from '@onesignal/node-onesignal';
import { Agent, request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  type OneSignalEmulator,
  type OneSignalEmulatorOptions,
  startOneSignalEmulator,
} from '../../src/emulators/onesignal/index';
import { isAmpError } from '../../src/errors';

const APP = 'aaaaaaaa-0000-4000-8000-000000000001';
const KEY = 'key-one';
const APP2 = 'bbbbbbbb-0000-4000-8000-000000000002';
const KEY2 = 'key-two';

const agent = new Agent({ connections: 16 });
afterAll(() => agent.close());

const running: OneSignalEmulator[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.close()));
});

async function start(opts: Partial<OneSignalEmulatorOptions> = {}): Promise<OneSignalEmulator> {
  const emu = await startOneSignalEmulator({
    apps: [
      { appId: APP, apiKey: KEY },
      { appId: APP2, apiKey: KEY2 },
    ],
    perUserPerSecond: 0,
    users: { mode: 'seeded', count: 10 },
    ...opts,
  });
  running.push(emu);
  return emu;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: any;
}

async function call(
  emu: OneSignalEmulator,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  urlPath: string,
  opts: { body?: unknown; key?: string | null; auth?: string; contentType?: string | null } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const auth = opts.auth ?? (opts.key === null ? undefined : `Key ${opts.key ?? KEY}`);
  if (auth !== undefined) headers.authorization = auth;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    if (opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
  }
  const res = await request(emu.url + urlPath, { method, headers, body, dispatcher: agent });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, json: text ? JSON.parse(text) : undefined };
}

const patchTags = (emu: OneSignalEmulator, user: string, tags: Record<string, unknown>, app = APP, key = KEY) =>
  call(emu, 'PATCH', `/apps/${app}/users/by/external_id/${user}`, { body: { properties: { tags } }, key });

/** Polls `fn` until it returns a value, with a deadline (no blind sleeps). */
async function until<T>(fn: () => Promise<T | undefined>, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((r) => setImmediate(r));
  }
}

describe('OneSignal emulator: options', () => {
  it('refuses invalid options with a readable AmpError', async () => {
    const err = await startOneSignalEmulator({ apps: [] }).catch((e: unknown) => e);
    expect(isAmpError(err)).toBe(true);
    expect((err as Error).message).toMatch(/at least one app/);
    const err2 = await startOneSignalEmulator({ apps: [{ appId: 'a', apiKey: 'k' }], faults: { errorRate: 2 } }).catch(
      (e: unknown) => e,
    );
    expect((err2 as Error).message).toMatch(/errorRate/);
    const err3 = await startOneSignalEmulator({
      apps: [{ appId: 'a', apiKey: 'k' }],
      users: { mode: 'seeded', file: '/nonexistent/ids.txt' },
    }).catch((e: unknown) => e);
    expect((err3 as Error).message).toMatch(/cannot read the seed file/);
  });

  it('seeds users from a count, a list and a file, in every app', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'os-emu-'));
    const file = path.join(dir, 'ids.txt');
    writeFileSync(file, 'from-file-1\r\n\nfrom-file-2\n');
    try {
      const emu = await start({ users: { mode: 'seeded', count: 2, ids: ['listed', 'user-0'], file } });
      expect(emu.state.userCount()).toBe(5);
      expect(emu.state.userCount(APP2)).toBe(5);
      expect(emu.state.getUser('from-file-2')).toEqual({});
      expect(emu.state.getUser('user-2')).toBeUndefined();
      const empty = await start({ users: { mode: 'empty' } });
      expect(empty.state.userCount()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('OneSignal emulator: auth', () => {
  it('answers 401 without a header, 403 for a wrong key, 400 for an unknown app, and accepts "key" lowercase', async () => {
    const emu = await start();
    const missing = await patchTagsRaw(emu, { key: null });
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({
      errors: [{ code: 'auth-1', title: "This operation requires 'Authorization' in the HTTP header" }],
    });

    const wrong = await patchTagsRaw(emu, { key: 'nope' });
    expect(wrong.status).toBe(403);
    expect(wrong.json.errors[0]).toMatch(/^Access denied\./);

    // The key of another app is a wrong key for this one.
    expect((await patchTagsRaw(emu, { key: KEY2 })).status).toBe(403);
    expect((await patchTagsRaw(emu, { auth: `Basic ${KEY}` })).status).toBe(403);

    const unknownApp = await call(emu, 'PATCH', `/apps/does-not-exist/users/by/external_id/user-1`, {
      body: { properties: { tags: { a: '1' } } },
    });
    expect(unknownApp.status).toBe(400);
    expect(unknownApp.json.errors[0]).toMatch(/^app_id not found\./);
    expect(Array.isArray(unknownApp.json.reference)).toBe(true);

    const lower = await patchTagsRaw(emu, { auth: `key ${KEY}` });
    expect(lower.status).toBe(202);
    expect(emu.state.getUser('user-1')).toEqual({ a: '1' });
    // Nothing from the rejected attempts was applied, and apps are separate.
    expect(emu.state.getUser('user-1', APP2)).toEqual({});
  });

  function patchTagsRaw(emu: OneSignalEmulator, o: { key?: string | null; auth?: string }) {
    return call(emu, 'PATCH', `/apps/${APP}/users/by/external_id/user-1`, {
      body: { properties: { tags: { a: '1' } } },
      ...o,
    });
  }
});

describe('OneSignal emulator: tags', () => {
  it('adds with a string, deletes with "" or null, and answers 202 with the resulting tags', async () => {
    const emu = await start();
    const r1 = await patchTags(emu, 'user-3', { amp_cohort_1: '1', amp_cohort_2: '1', plan: 'gold' });
    expect(r1.status).toBe(202);
    expect(r1.json).toEqual({ properties: { tags: { amp_cohort_1: '1', amp_cohort_2: '1', plan: 'gold' } } });

    const r2 = await patchTags(emu, 'user-3', { amp_cohort_1: '', amp_cohort_2: null, never_set: '' });
    expect(r2.status).toBe(202);
    expect(r2.json).toEqual({ properties: { tags: { plan: 'gold' } } });
    expect(emu.state.getUser('user-3')).toEqual({ plan: 'gold' });

    const r3 = await call(emu, 'GET', `/_emulator/users/${APP}/user-3`);
    expect(r3.json).toEqual({ app_id: APP, external_id: 'user-3', tags: { plan: 'gold' } });
  });

  it('rejects non-string values, restricted keys and unsupported aliases with 400, applying nothing', async () => {
    const emu = await start();
    for (const tags of [
      { ok: '1', n: 5 },
      { ok: '1', arr: ['x'] },
      { ok: '1', obj: { a: 1 } },
      { ok: '1', bool: true },
    ]) {
      const r = await patchTags(emu, 'user-2', tags);
      expect(r.status).toBe(400);
      expect(r.json.errors[0].title).toMatch(/string/);
    }
    const restricted = await patchTags(emu, 'user-2', { ok: '1', message: 'x' });
    expect(restricted.status).toBe(400);
    const alias = await call(emu, 'PATCH', `/apps/${APP}/users/by/onesignal_id/user-2`, {
      body: { properties: { tags: { ok: '1' } } },
    });
    expect(alias.status).toBe(400);
    expect(emu.state.getUser('user-2')).toEqual({});
  });

  it('answers 404 in the User Model envelope for an unknown external id', async () => {
    const emu = await start();
    const r = await patchTags(emu, 'nobody', { a: '1' });
    expect(r.status).toBe(404);
    expect(r.json).toEqual({ errors: [{ code: 'user-not-found', title: 'User not found' }] });
    expect(emu.state.getUser('nobody')).toBeUndefined();
  });

  it('rejects more than 100 property updates in one request', async () => {
    const emu = await start({ maxTagsPerUser: 500 });
    const tags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, '1']));
    const over = await patchTags(emu, 'user-4', tags(101));
    expect(over.status).toBe(400);
    expect(over.json.errors[0].title).toBe('Please limit your tag updates to 100 per request');
    expect(emu.state.getUser('user-4')).toEqual({});
    const exactly = await patchTags(emu, 'user-4', tags(100));
    expect(exactly.status).toBe(202);
    expect(Object.keys(emu.state.getUser('user-4')!)).toHaveLength(100);
  });

  it('enforces the tag budget; deletes in the same request do not make room', async () => {
    const emu = await start({ maxTagsPerUser: 3 });
    expect((await patchTags(emu, 'user-5', { a: '1', b: '1', c: '1' })).status).toBe(202);

    const add = await patchTags(emu, 'user-5', { d: '1' });
    expect(add.status).toBe(400);
    expect(add.json.errors[0].title).toBe('App is limited to a maximum of 3 tags on a given player');

    const swap = await patchTags(emu, 'user-5', { a: '', d: '1' });
    expect(swap.status).toBe(400);
    expect(emu.state.getUser('user-5')).toEqual({ a: '1', b: '1', c: '1' });

    // Updating an existing tag at the limit is fine; delete first, then add in a second request.
    expect((await patchTags(emu, 'user-5', { a: '2' })).status).toBe(202);
    expect((await patchTags(emu, 'user-5', { a: '' })).status).toBe(202);
    expect((await patchTags(emu, 'user-5', { d: '1' })).status).toBe(202);
    expect(emu.state.getUser('user-5')).toEqual({ b: '1', c: '1', d: '1' });
  });

  it('answers a body without a JSON content type like OneSignal does (400 app_id not found)', async () => {
    const emu = await start();
    const r = await call(emu, 'PATCH', `/apps/${APP}/users/by/external_id/user-1`, {
      body: JSON.stringify({ properties: { tags: { a: '1' } } }),
      contentType: 'text/plain',
    });
    expect(r.status).toBe(400);
    expect(r.json.errors[0]).toMatch(/Content-Type: application\/json/);
    const bad = await call(emu, 'PATCH', `/apps/${APP}/users/by/external_id/user-1`, { body: '{not json' });
    expect(bad.status).toBe(400);
    expect(emu.state.getUser('user-1')).toEqual({});
  });
});

describe('OneSignal emulator: create, view and delete users', () => {
  it('creates (200), modifies (202), views (200/404, 1 req/s per app) and deletes users', async () => {
    const emu = await start({ users: { mode: 'empty' }, viewRateLimitPerSecond: 0 });
    const noSub = await call(emu, 'POST', `/apps/${APP}/users`, { body: { identity: { external_id: 'u1' } } });
    expect(noSub.status).toBe(400);
    const noId = await call(emu, 'POST', `/apps/${APP}/users`, {
      body: { identity: {}, subscriptions: [{ type: 'Email', token: 'a@b.c' }] },
    });
    expect(noId.status).toBe(400);
    expect(emu.state.userCount()).toBe(0);

    const body = {
      identity: { external_id: 'u1' },
      properties: { tags: { a: '1' } },
      subscriptions: [{ type: 'Email', token: 'a@b.c' }],
    };
    const created = await call(emu, 'POST', `/apps/${APP}/users`, { body });
    expect(created.status).toBe(200);
    expect(created.json.identity.external_id).toBe('u1');
    expect(created.json.identity.onesignal_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.json.properties.tags).toEqual({ a: '1' });

    const again = await call(emu, 'POST', `/apps/${APP}/users`, {
      body: { ...body, properties: { tags: { b: '1' } } },
    });
    expect(again.status).toBe(202);
    expect(again.json.identity.onesignal_id).toBe(created.json.identity.onesignal_id);
    expect(emu.state.getUser('u1')).toEqual({ a: '1', b: '1' });

    const view = await call(emu, 'GET', `/apps/${APP}/users/by/external_id/u1`);
    expect(view.status).toBe(200);
    expect(view.json.properties.tags).toEqual({ a: '1', b: '1' });
    expect((await call(emu, 'GET', `/apps/${APP}/users/by/external_id/u2`)).status).toBe(404);

    expect((await call(emu, 'DELETE', `/apps/${APP}/users/by/external_id/u1`)).status).toBe(200);
    expect(emu.state.getUser('u1')).toBeUndefined();
    expect((await call(emu, 'DELETE', `/apps/${APP}/users/by/external_id/u1`)).status).toBe(404);
  });

  it('limits the view endpoint to 1 request per second per app by default', async () => {
    const emu = await start();
    const first = await call(emu, 'GET', `/apps/${APP}/users/by/external_id/user-1`);
    const second = await call(emu, 'GET', `/apps/${APP}/users/by/external_id/user-2`);
    expect(first.status).toBe(200);
    expect(second.status).toBe(429);
    expect(second.json).toEqual({ errors: ['API rate limit exceeded'], limit: 'App ID' });
    // The other app has its own bucket.
    expect((await call(emu, 'GET', `/apps/${APP2}/users/by/external_id/user-1`, { key: KEY2 })).status).toBe(200);
  });
});

describe('OneSignal emulator: segments', () => {
  const seg = (name: string, key = 'amp_cohort_1') => ({
    name,
    filters: [{ field: 'tag', key, relation: '=', value: '1' }],
  });

  it('creates, lists in creation order with offset/limit, refuses duplicates and bad filters, and deletes', async () => {
    const emu = await start();
    const a = await call(emu, 'POST', `/apps/${APP}/segments`, { body: seg('Cohort A') });
    expect(a.status).toBe(201);
    expect(a.json).toEqual({ success: true, id: expect.stringMatching(/^[0-9a-f-]{36}$/) });
    const b = await call(emu, 'POST', `/apps/${APP}/segments`, { body: seg('Cohort B', 'amp_cohort_2') });
    expect(b.status).toBe(201);

    const dup = await call(emu, 'POST', `/apps/${APP}/segments`, { body: seg('Cohort A') });
    expect(dup.status).toBe(409);
    expect(dup.json).toEqual({ success: false, errors: ['Segment name is already taken.'] });

    const invalid: unknown[] = [
      { name: 'x', filters: [] },
      { name: 'y'.repeat(129), filters: seg('z').filters },
      { name: 'exists-with-value', filters: [{ field: 'tag', key: 'k', relation: 'exists', value: '1' }] },
      { name: 'in-array', filters: [{ field: 'tag', key: 'k', relation: 'in_array', value: '1,2' }] },
      { name: 'no-key', filters: [{ field: 'tag', relation: '=', value: '1' }] },
      { name: 'bad-field', filters: [{ field: 'amplitude_cohort', relation: '=', value: '1' }] },
      { name: 'trailing-or', filters: [...seg('z').filters, { operator: 'OR' }] },
      { name: 'too-many', filters: Array.from({ length: 201 }, () => seg('z').filters[0]) },
    ];
    for (const body of invalid) {
      const r = await call(emu, 'POST', `/apps/${APP}/segments`, { body });
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json.success).toBe(false);
      expect(r.json.errors.length).toBeGreaterThan(0);
    }
    const okOr = await call(emu, 'POST', `/apps/${APP}/segments`, {
      body: {
        name: 'Either',
        filters: [seg('').filters[0], { operator: 'OR' }, { field: 'tag', key: 'k2', relation: 'exists' }],
      },
    });
    expect(okOr.status).toBe(201);

    const list = await call(emu, 'GET', `/apps/${APP}/segments`);
    expect(list.status).toBe(200);
    expect(list.json.total_count).toBe(3);
    expect(list.json.limit).toBe(300);
    expect(list.json.segments.map((s: { name: string }) => s.name)).toEqual(['Cohort A', 'Cohort B', 'Either']);
    expect(list.json.segments[0]).toMatchObject({ id: a.json.id, app_id: APP, read_only: false, is_active: true });
    expect(list.json.segments[0].filters).toBeUndefined();

    const page = await call(emu, 'GET', `/apps/${APP}/segments?offset=1&limit=1`);
    expect(page.json).toMatchObject({ total_count: 3, offset: 1, limit: 1 });
    expect(page.json.segments.map((s: { id: string }) => s.id)).toEqual([b.json.id]);
    expect((await call(emu, 'GET', `/apps/${APP}/segments?limit=301`)).status).toBe(400);

    expect(emu.state.segments()[0]!.filters).toEqual(seg('').filters);
    expect(emu.state.segments(APP2)).toEqual([]);

    const del = await call(emu, 'DELETE', `/apps/${APP}/segments/${a.json.id}`);
    expect(del.status).toBe(200);
    expect(del.json).toEqual({ success: true });
    const delAgain = await call(emu, 'DELETE', `/apps/${APP}/segments/${a.json.id}`);
    expect(delAgain.status).toBe(404);
    expect(delAgain.json).toEqual({ success: false });
    expect(emu.state.segments().map((s) => s.name)).toEqual(['Cohort B', 'Either']);
  });
});

describe('OneSignal emulator: rate limits', () => {
  it('answers 429 with Retry-After past the per-app limit and never accepts more than the limit per second', async () => {
    const emu = await start({ rateLimitPerSecond: 5, users: { mode: 'seeded', count: 40 } });
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => patchTags(emu, `user-${i}`, { a: '1' })));
    const ok = answers.filter((r) => r.status === 202);
    const limited = answers.filter((r) => r.status === 429);
    expect(ok.length + limited.length).toBe(40);
    expect(limited.length).toBeGreaterThan(0);
    for (const r of limited) {
      expect(r.json).toEqual({ errors: ['API rate limit exceeded'], limit: 'App ID' });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const stats = emu.state.stats();
    expect(stats.byApp[APP]!.maxPerSecond).toBeLessThanOrEqual(5);
    expect(stats.byApp[APP]!.accepted).toBe(ok.length);
    expect(stats.byApp[APP]!.rateLimited).toBe(limited.length);
    expect(stats.byStatus['429']).toBe(limited.length);
    // Rejected requests were not applied.
    const tagged = Array.from({ length: 40 }, (_, i) => emu.state.getUser(`user-${i}`)!).filter((t) => t.a === '1');
    expect(tagged.length).toBe(ok.length);
    // The other app is not affected.
    expect((await patchTags(emu, 'user-0', { a: '1' }, APP2, KEY2)).status).toBe(202);
  });

  it('limits each user to 1 request per second, with Retry-After, and recovers afterwards', async () => {
    const emu = await start({ perUserPerSecond: 1 });
    expect((await patchTags(emu, 'user-1', { a: '1' })).status).toBe(202);
    const second = await patchTags(emu, 'user-1', { b: '1' });
    expect(second.status).toBe(429);
    expect(second.headers['retry-after']).toBe('1');
    expect(second.json).toEqual({ errors: ['API rate limit exceeded'], limit: 'App ID' });
    expect(emu.state.getUser('user-1')).toEqual({ a: '1' });
    expect((await patchTags(emu, 'user-2', { b: '1' })).status).toBe(202);

    const stats = emu.state.stats();
    expect(stats.perUserViolations).toBe(1);
    expect(stats.byApp[APP]!.accepted).toBe(2);

    const later = await until(async () => {
      const r = await patchTags(emu, 'user-1', { b: '1' });
      return r.status === 202 ? r : undefined;
    });
    expect(later.json.properties.tags).toEqual({ a: '1', b: '1' });
  });

  it('applies new limits set at runtime (in process and over HTTP)', async () => {
    const emu = await start();
    emu.setLimits({ rateLimitPerSecond: 1 });
    expect((await patchTags(emu, 'user-1', { a: '1' })).status).toBe(202);
    expect((await patchTags(emu, 'user-2', { a: '1' })).status).toBe(429);
    const r = await call(emu, 'POST', '/_emulator/limits', { body: { rateLimitPerSecond: 0, maxTagsPerUser: 1 } });
    expect(r.json.limits).toMatchObject({ rateLimitPerSecond: 0, maxTagsPerUser: 1 });
    expect((await patchTags(emu, 'user-2', { a: '1' })).status).toBe(202);
    expect((await patchTags(emu, 'user-2', { b: '1' })).status).toBe(400);
    expect((await call(emu, 'POST', '/_emulator/limits', { body: { rateLimitPerSecond: -1 } })).status).toBe(400);
  });
});

describe('OneSignal emulator: faults', () => {
  it('errorRate 1 answers 5xx and applies nothing', async () => {
    const emu = await start({ faults: { errorRate: 1 } });
    for (let i = 0; i < 5; i++) {
      const r = await patchTags(emu, 'user-1', { a: '1' });
      expect([500, 502, 503]).toContain(r.status);
      expect(Array.isArray(r.json.errors)).toBe(true);
    }
    expect(emu.state.getUser('user-1')).toEqual({});
    emu.setFaults({ errorRate: 0 });
    expect((await patchTags(emu, 'user-1', { a: '1' })).status).toBe(202);
  });

  it('dropRate 1 closes the socket without an answer and applies nothing; settable over HTTP', async () => {
    const emu = await start();
    const set = await call(emu, 'POST', '/_emulator/faults', { body: { dropRate: 1 } });
    expect(set.json.faults).toMatchObject({ dropRate: 1, errorRate: 0 });
    const err = await patchTags(emu, 'user-1', { a: '1' }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    );
    expect(err).toBeDefined();
    expect(err!.code).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    expect(emu.state.getUser('user-1')).toEqual({});
    expect(emu.state.stats().dropped).toBe(1);
    await call(emu, 'POST', '/_emulator/faults', { body: { dropRate: 0 } });
    expect((await patchTags(emu, 'user-1', { a: '1' })).status).toBe(202);
    expect((await call(emu, 'POST', '/_emulator/faults', { body: { dropRate: 3 } })).status).toBe(400);
  });

  it('latencyMs delays every answer', async () => {
    const emu = await start({ faults: { latencyMs: 150 } });
    const t0 = performance.now();
    expect((await patchTags(emu, 'user-1', { a: '1' })).status).toBe(202);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
  });
});

describe('OneSignal emulator: inspection endpoints', () => {
  it('shows state, seeds users and resets', async () => {
    const emu = await start({ users: { mode: 'seeded', ids: ['alice', 'bob'] } });
    await patchTags(emu, 'alice', { a: '1' });
    await call(emu, 'POST', `/apps/${APP}/segments`, {
      body: { name: 'S', filters: [{ field: 'tag', key: 'a', relation: '=', value: '1' }] },
    });

    const full = await call(emu, 'GET', `/_emulator/state?app_id=${APP}`);
    expect(full.status).toBe(200);
    expect(full.json.apps).toHaveLength(1);
    expect(full.json.apps[0]).toMatchObject({ app_id: APP, user_count: 2, users: { alice: { a: '1' }, bob: {} } });
    expect(full.json.apps[0].segments[0].name).toBe('S');
    expect(full.json.stats.byApp[APP].accepted).toBe(1);

    const summary = await call(emu, 'GET', '/_emulator/state?summary=1');
    expect(summary.json.apps).toHaveLength(2);
    expect(summary.json.apps[0].users).toBeUndefined();
    expect((await call(emu, 'GET', '/_emulator/state?app_id=nope')).status).toBe(404);

    expect((await call(emu, 'GET', `/_emulator/users/${APP}/alice`)).json.tags).toEqual({ a: '1' });
    expect((await call(emu, 'GET', `/_emulator/users/${APP}/carol`)).status).toBe(404);

    const seeded = await call(emu, 'POST', '/_emulator/users', {
      body: { app_id: APP, ids: ['carol', 'alice'], count: 3 },
    });
    expect(seeded.json).toEqual({ added: 4 });
    expect(emu.state.userCount()).toBe(6);
    expect(emu.state.userCount(APP2)).toBe(2);
    expect((await patchTags(emu, 'user-2', { z: '1' })).status).toBe(202);
    expect((await call(emu, 'POST', '/_emulator/users', { body: { count: 'many' } })).status).toBe(400);

    const reset = await call(emu, 'POST', '/_emulator/reset', { body: {} });
    expect(reset.status).toBe(200);
    expect(emu.state.userCount()).toBe(2);
    expect(emu.state.getUser('alice')).toEqual({});
    expect(emu.state.segments()).toEqual([]);
    expect(emu.state.stats().requests).toBe(0);
  });
});

describe('OneSignal emulator: official Node SDK', () => {
  it('works with @onesignal/node-onesignal pointed at the emulator', async () => {
    const emu = await start({ users: { mode: 'empty' } });
    const config = OneSignal.createConfiguration({
      restApiKey: KEY,
      baseServer: new OneSignal.ServerConfiguration(emu.url, {}),
    });
    const api = new OneSignal.DefaultApi(config);

    const user = new OneSignal.User();
    user.identity = { external_id: 'sdk-user' };
    user.properties = { tags: { plan: 'pro' } };
    const sub = new OneSignal.Subscription();
    sub.type = 'Email';
    sub.token = 'sdk@example.com';
    user.subscriptions = [sub];
    const created = await api.createUser(APP, user);
    expect(created.identity?.external_id).toBe('sdk-user');

    const updated = await api.updateUser(APP, 'external_id', 'sdk-user', {
      properties: { tags: { amp_cohort_9: '1', plan: '' } },
    });
    expect(updated.properties?.tags).toEqual({ amp_cohort_9: '1' });
    expect(emu.state.getUser('sdk-user')).toEqual({ amp_cohort_9: '1' });

    const segment = new OneSignal.Segment();
    segment.name = 'Cohort 9';
    const filter = new OneSignal.FilterExpression();
    filter.field = 'tag';
    filter.key = 'amp_cohort_9';
    filter.relation = '=';
    filter.value = '1';
    segment.filters = [filter];
    const made = await api.createSegment(APP, segment);
    expect(made.success).toBe(true);

    const segments = await api.getSegments(APP, 0, 10);
    expect(segments.total_count).toBe(1);
    expect(segments.segments?.[0]?.name).toBe('Cohort 9');

    const bad = new OneSignal.DefaultApi(
      OneSignal.createConfiguration({
        restApiKey: 'wrong',
        baseServer: new OneSignal.ServerConfiguration(emu.url, {}),
      }),
    );
    await expect(bad.getSegments(APP)).rejects.toMatchObject({ code: 403 });
  });
});

describe('OneSignal emulator: CLI', () => {
  it('starts as a child process, prints its URL as JSON, serves, and exits cleanly on SIGTERM', async () => {
    const root = path.resolve(__dirname, '../..');
    const child = spawn(
      process.execPath,
      [
        'bin/ampsignal.mjs',
        'emulator',
        'onesignal',
        '--port',
        '0',
        '--json',
        '--app',
        `${APP}:${KEY}`,
        '--seed-count',
        '5',
      ],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let errOut = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
    try {
      const info = await until(async () => {
        await new Promise((r) => setTimeout(r, 50));
        if (child.exitCode !== null) throw new Error(`CLI exited early: ${errOut}`);
        try {
          return JSON.parse(out) as { url: string; apps: Array<{ app_id: string; api_key: string }>; users: number };
        } catch {
          return undefined;
        }
      }, 45_000);
      expect(info.apps).toEqual([{ app_id: APP, api_key: KEY }]);
      expect(info.users).toBe(5);
      const res = await request(`${info.url}/apps/${APP}/users/by/external_id/user-4`, {
        method: 'PATCH',
        headers: { authorization: `Key ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ properties: { tags: { x: '1' } } }),
        dispatcher: agent,
      });
      expect(res.statusCode).toBe(202);
      await res.body.text();
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('rejects a bad flag value with one line and exit code 2', async () => {
    const root = path.resolve(__dirname, '../..');
    const child = spawn(
      process.execPath,
      ['bin/ampsignal.mjs', 'emulator', 'onesignal', '--port', '0', '--error-rate', '7'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let errOut = '';
    child.stderr.on('data', (d: Buffer) => (errOut += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
    expect(errOut.trim().split('\n')).toHaveLength(1);
    expect(errOut).toMatch(/--error-rate/);
  });
});
