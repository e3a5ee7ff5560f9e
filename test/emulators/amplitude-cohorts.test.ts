import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AmplitudeEmulator,
  type AmplitudeEmulatorOptions,
  startAmplitudeEmulator,
} from '../../src/emulators/amplitude';

const P1 = { apiKey: 'project-one-key', secretKey: 'project-one-secret' };
const P2 = { apiKey: 'project-two-key', secretKey: 'project-two-secret' };
const basic = (p: { apiKey: string; secretKey: string }) =>
  `Basic ${Buffer.from(`${p.apiKey}:${p.secretKey}`).toString('base64')}`;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<AmplitudeEmulatorOptions> = {}): Promise<AmplitudeEmulator> {
  const emu = await startAmplitudeEmulator({ projects: [P1, P2], ...opts });
  cleanups.push(() => emu.close());
  return emu;
}

async function get(url: string, auth: string | null = basic(P1)) {
  const res = await request(url, { method: 'GET', headers: auth ? { authorization: auth } : {} });
  const buf = Buffer.from(await res.body.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, buf, json };
}

/** Parses the emulator's CSV the way a careful client must: strip the leading tab Amplitude adds. */
function rows(gz: Buffer): string[][] {
  const records = parse(gunzipSync(gz).toString('utf8')) as string[][];
  return records.map((r) => r.map((v) => v.replace(/^\t/, '')));
}

async function download(emu: AmplitudeEmulator, cohortId: string, query = '') {
  const req = await get(`${emu.url}/api/5/cohorts/request/${cohortId}${query}`);
  expect(req.status).toBe(202);
  expect(req.json).toEqual({ request_id: expect.any(String), cohort_id: cohortId });
  const statuses: Array<[number, string]> = [];
  for (;;) {
    const s = await get(`${emu.url}/api/5/cohorts/request-status/${req.json.request_id}`);
    statuses.push([s.status, s.json.async_status]);
    if (s.status === 200) break;
    expect(statuses.length).toBeLessThan(10);
  }
  return { requestId: req.json.request_id as string, statuses };
}

describe('amplitude emulator: behavioral cohorts API', () => {
  it('lists cohorts of the authenticated project only, with Amplitude fields', async () => {
    const emu = await start({
      cohorts: [{ id: 'abc123', name: 'Buyers', members: [{ user_id: 'alice' }, { user_id: 'bob' }] }],
    });
    emu.cohorts.upsert({ id: 'other1', name: 'Other', apiKey: P2.apiKey, members: [] });
    const res = await get(`${emu.url}/api/3/cohorts`);
    expect(res.status).toBe(200);
    expect(res.json.cohorts).toHaveLength(1);
    const c = res.json.cohorts[0];
    expect(c).toMatchObject({
      appId: expect.any(Number),
      id: 'abc123',
      name: 'Buyers',
      size: 2,
      archived: false,
      finished: true,
      published: true,
    });
    // lastComputed is epoch seconds, not milliseconds.
    expect(Math.abs(c.lastComputed - Date.now() / 1000)).toBeLessThan(60);
    const other = await get(`${emu.url}/api/3/cohorts`, basic(P2));
    expect(other.json.cohorts.map((x: { id: string }) => x.id)).toEqual(['other1']);
  });

  it('refuses missing or wrong Basic credentials with 401, unknown cohorts and requests with 404', async () => {
    const emu = await start({ cohorts: [{ id: 'abc123', name: 'Buyers', members: [] }] });
    const none = await get(`${emu.url}/api/3/cohorts`, null);
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ http_code: 401 });
    expect((await get(`${emu.url}/api/3/cohorts`, basic({ apiKey: P1.apiKey, secretKey: 'wrong' }))).status).toBe(401);
    expect((await get(`${emu.url}/api/5/cohorts/request/nope`)).status).toBe(404);
    // A cohort of another project is invisible.
    expect((await get(`${emu.url}/api/5/cohorts/request/abc123`, basic(P2))).status).toBe(404);
    expect((await get(`${emu.url}/api/5/cohorts/request-status/nope`)).status).toBe(404);
    expect(emu.cohorts.downloads()).toBe(0);
  });

  it('downloads in three steps: 202 request, 202 JOB INPROGRESS polls, 200, then an inline gzip CSV frozen at request time', async () => {
    const emu = await start({ pollsBeforeReady: 2 });
    emu.cohorts.upsert({
      id: 'c1',
      name: 'Buyers',
      members: [
        { user_id: 'alice', amplitude_id: 11, properties: { city: 'Paris', plan: 'pro' } },
        { user_id: 'bob "the" builder', amplitude_id: 12, properties: { city: 'Oslo, NO' } },
        { amplitude_id: 13 },
      ],
    });
    const { requestId, statuses } = await download(emu, 'c1', '?props=1&propKeys=city&propKeys=plan');
    expect(statuses).toEqual([
      [202, 'JOB INPROGRESS'],
      [202, 'JOB INPROGRESS'],
      [200, 'JOB COMPLETED'],
    ]);
    emu.cohorts.addMembers('c1', [{ user_id: 'late-joiner' }]);

    const file = await get(`${emu.url}/api/5/cohorts/request/${requestId}/file`);
    expect(file.status).toBe(200);
    expect(file.headers['content-type']).toMatch(/^text\/csv/);
    expect(file.headers['content-encoding']).toBe('gzip');
    const raw = gunzipSync(file.buf).toString('utf8');
    expect(raw.startsWith('"\tamplitude_id","\tuser_id","\tcity","\tplan"')).toBe(true);
    expect(rows(file.buf)).toEqual([
      ['amplitude_id', 'user_id', 'city', 'plan'],
      ['11', 'alice', 'Paris', 'pro'],
      ['12', 'bob "the" builder', 'Oslo, NO', ''],
      ['13', '', '', ''],
    ]);
    expect(emu.cohorts.downloads(P1.apiKey)).toBe(1);
    expect(emu.stats().cohorts.downloads).toEqual({ [P1.apiKey]: 1 });

    // Without props only the two id columns come back.
    const plain = await download(emu, 'c1');
    const f2 = await get(`${emu.url}/api/5/cohorts/request/${plain.requestId}/file`);
    expect(rows(f2.buf)[0]).toEqual(['amplitude_id', 'user_id']);
    expect(rows(f2.buf)).toHaveLength(5);
    expect(emu.cohorts.downloads(P1.apiKey)).toBe(2);
  });

  it('refuses the file before the job completed', async () => {
    const emu = await start({
      pollsBeforeReady: 1,
      cohorts: [{ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] }],
    });
    const req = await get(`${emu.url}/api/5/cohorts/request/c1`);
    const early = await get(`${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`);
    expect(early.status).toBe(400);
    expect(early.json.error.message).toMatch(/JOB COMPLETED/);
  });

  it('redirects large files to a short-lived pre-signed URL serving raw gzip bytes; expired links answer 403', async () => {
    const emu = await start({
      pollsBeforeReady: 0,
      redirectAbove: 3,
      tabPrefix: false,
      cohorts: [{ id: 'big', name: 'Big', members: Array.from({ length: 5 }, (_, i) => ({ user_id: `user-${i}` })) }],
    });
    const { requestId } = await download(emu, 'big');
    const file = await get(`${emu.url}/api/5/cohorts/request/${requestId}/file`);
    expect(file.status).toBe(302);
    const location = String(file.headers.location);
    expect(location).toMatch(new RegExp(`^${emu.url}/_s3/\\w+$`));

    const s3 = await get(location, null);
    expect(s3.status).toBe(200);
    expect(s3.headers['content-type']).toBe('application/octet-stream');
    expect(s3.headers['content-encoding']).toBeUndefined();
    expect(rows(s3.buf).map((r) => r[1])).toEqual(['user_id', 'user-0', 'user-1', 'user-2', 'user-3', 'user-4']);
    expect(gunzipSync(s3.buf).toString('utf8')).not.toContain('\t');

    emu.cohorts.expireRedirects();
    const expired = await get(location, null);
    expect(expired.status).toBe(403);
    expect(expired.buf.toString()).toContain('AccessDenied');

    // Calling .../file again mints a fresh, working link.
    const again = await get(`${emu.url}/api/5/cohorts/request/${requestId}/file`);
    expect(again.headers.location).not.toBe(location);
    expect((await get(String(again.headers.location), null)).status).toBe(200);
    expect(emu.stats().cohorts.redirects).toBe(2);
  });

  it('answers 429 naming the limit when a project has more requests in flight than maxConcurrent', async () => {
    const emu = await start({ maxConcurrent: 2, faults: { cohorts: { latencyMs: 1500 } } });
    const results = await Promise.all(Array.from({ length: 5 }, () => get(`${emu.url}/api/3/cohorts`)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 429, 429, 429]);
    const limited = results.find((r) => r.status === 429)!;
    expect(limited.json.error.message).toMatch(/2 concurrent requests per project/);
    expect(emu.stats().cohorts.throttled).toBe(3);
    // The limit is per project: the other project is unaffected, and the slots free up afterwards.
    emu.setFaults({});
    expect((await get(`${emu.url}/api/3/cohorts`, basic(P2))).status).toBe(200);
    expect((await get(`${emu.url}/api/3/cohorts`)).status).toBe(200);
    expect(emu.stats().cohorts.inFlight).toEqual({});
  });

  it('scripted answers and dropped connections on the cohorts API', async () => {
    const emu = await start({ cohorts: [{ id: 'c1', name: 'x', members: [] }] });
    emu.cohorts.forceNext(503, undefined, 1);
    expect((await get(`${emu.url}/api/3/cohorts`)).status).toBe(503);
    emu.cohorts.forceNext(0);
    await expect(get(`${emu.url}/api/3/cohorts`)).rejects.toThrow();
    expect((await get(`${emu.url}/api/3/cohorts`)).status).toBe(200);
  });

  it('is controllable over HTTP under /_emulator', async () => {
    const emu = await start();
    const put = await request(`${emu.url}/_emulator/cohorts/web1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Web', members: [{ user_id: 'alice' }, { user_id: 'bob' }] }),
    });
    expect(put.statusCode).toBe(200);
    expect(await put.body.json()).toMatchObject({ id: 'web1', size: 2 });
    const change = await request(`${emu.url}/_emulator/cohorts/web1/members`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ add: [{ user_id: 'carol' }], remove: ['alice'] }),
    });
    expect(await change.body.json()).toEqual({ added: 1, removed: 1 });
    const members = await get(`${emu.url}/_emulator/cohorts/web1/members`, null);
    expect(members.json.members.map((m: { user_id: string }) => m.user_id).sort()).toEqual(['bob', 'carol']);
    const badInput = await request(`${emu.url}/_emulator/cohorts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'x y' }),
    });
    expect(badInput.statusCode).toBe(400);
    expect(((await badInput.body.json()) as { error: string }).error).toMatch(/id|name/);
    const missing = await request(`${emu.url}/_emulator/cohorts/nope/members`, { method: 'GET' });
    expect(missing.statusCode).toBe(404);
    await missing.body.dump();
    await download(emu, 'web1');
    const stats = await get(`${emu.url}/_emulator/stats`, null);
    expect(stats.json.cohorts.downloads).toEqual({ [P1.apiKey]: 1 });
    expect(stats.json.cohorts.requests['202']).toBeGreaterThanOrEqual(1);
  });
});

describe('amplitude emulator: cohort webhook push', () => {
  interface Received {
    headers: Record<string, unknown>;
    body: any;
  }

  /** A receiver whose answer per call is decided by `answer(n)` (n = 1-based call number). */
  async function receiver(answer: (n: number) => number | Promise<number> = () => 200) {
    const got: Received[] = [];
    const app: FastifyInstance = Fastify();
    let n = 0;
    app.post('/hook', async (req, reply) => {
      n++;
      got.push({ headers: req.headers, body: req.body });
      return reply.code(await answer(n)).send({ ok: true });
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => app.close());
    return { url: `${url}/hook`, got };
  }

  it('pushes enter and exit batches with Amplitude headers and payload; anonymous members are not sent', async () => {
    const hook = await receiver();
    const emu = await start({
      webhookUrl: hook.url,
      webhookHeaders: { Authorization: 'Bearer s3cret' },
      webhookBatchSize: 2,
    });
    emu.cohorts.upsert({
      id: 'c1',
      name: 'Buyers',
      members: [
        { user_id: 'alice', properties: { city: 'Paris' } },
        { user_id: 'bob' },
        { user_id: 'carol' },
        { amplitude_id: 99 },
      ],
    });
    await emu.webhooksIdle(10_000);
    expect(hook.got).toHaveLength(2);
    const [first, second] = hook.got.map((g) => g.body);
    expect(hook.got[0]!.headers).toMatchObject({
      'content-type': 'application/json',
      'user-agent': 'Amplitude/Webhook/1.0',
      authorization: 'Bearer s3cret',
    });
    expect(first).toEqual({
      cohort_name: 'Buyers',
      cohort_id: 'c1',
      in_cohort: true,
      computed_time: expect.stringMatching(/^\d{10}$/),
      message_id: expect.stringMatching(/^[0-9a-f-]{36}::enter::0$/),
      users: [
        { user_id: 'alice', user_properties: { city: 'Paris' } },
        { user_id: 'bob', user_properties: {} },
      ],
    });
    expect(second.message_id).toBe(first.message_id.replace('::enter::0', '::enter::1'));
    expect(second.users).toEqual([{ user_id: 'carol', user_properties: {} }]);

    emu.cohorts.removeMembers('c1', ['alice', 'nobody']);
    emu.cohorts.addMembers('c1', [{ user_id: 'dave' }]);
    await emu.webhooksIdle(10_000);
    const later = hook.got.slice(2).map((g) => g.body);
    expect(
      later.map((b) => [
        b.in_cohort,
        b.message_id.split('::').slice(1).join('::'),
        b.users.map((u: { user_id: string }) => u.user_id),
      ]),
    ).toEqual([
      [false, 'exit::0', ['alice']],
      [true, 'enter::0', ['dave']],
    ]);
    expect(emu.stats().webhooks).toMatchObject({ delivered: 4, failed: 0, pending: 0 });
  });

  it('labels every membership change with its own computation second, as its webhook and the cohort list say', async () => {
    const hook = await receiver();
    const emu = await start({ webhookUrl: hook.url });
    emu.cohorts.upsert({ id: 'c1', name: 'Buyers', members: [{ user_id: 'a' }, { user_id: 'b' }] });
    // Three changes in one tick: an export frozen between two of them must be tellable apart.
    emu.cohorts.addMembers('c1', [{ user_id: 'c' }]);
    emu.cohorts.removeMembers('c1', ['a']);
    emu.cohorts.addMembers('c1', [{ user_id: 'c' }]); // no change: no new computation
    await emu.webhooksIdle(10_000);
    const times = hook.got.map((g) => Number(g.body.computed_time));
    expect(times).toHaveLength(3);
    expect(times[1]).toBeGreaterThan(times[0]!);
    expect(times[2]).toBeGreaterThan(times[1]!);
    expect(emu.cohorts.list().find((c) => c.id === 'c1')?.lastComputed).toBe(times[2]);
  });

  it('retries failing deliveries with backoff and gives up after webhookRetries', async () => {
    const flaky = await receiver((n) => (n <= 2 ? 500 : 200));
    const emu = await start({ webhookUrl: flaky.url, webhookBaseDelayMs: 5 });
    emu.cohorts.upsert({ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] });
    expect(emu.pendingWebhooks()).toBe(1);
    await emu.webhooksIdle(10_000);
    expect(emu.webhookLog().map((a) => [a.attempt, a.status])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    // Every attempt carries the same message_id, so the receiver can dedupe.
    expect(new Set(flaky.got.map((g) => g.body.message_id)).size).toBe(1);

    const dead = await receiver(() => 503);
    const emu2 = await start({ webhookUrl: dead.url, webhookBaseDelayMs: 5, webhookRetries: 2 });
    const failed = new Promise((resolve) => emu2.onWebhook((a) => a.attempt === 3 && resolve(a)));
    emu2.cohorts.upsert({ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] });
    await failed;
    await emu2.webhooksIdle(10_000);
    expect(dead.got).toHaveLength(3);
    expect(emu2.stats().webhooks).toMatchObject({ delivered: 0, failed: 1, pending: 0 });
  });

  it('treats a receiver slower than the timeout as a failure and retries', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    cleanups.push(async () => release());
    const slow = await receiver(async (n) => {
      if (n === 1) await released;
      return 200;
    });
    const emu = await start({ webhookUrl: slow.url, webhookBaseDelayMs: 5, webhookTimeoutMs: 1_000 });
    emu.cohorts.upsert({ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] });
    await emu.webhooksIdle(10_000);
    release();
    const log = emu.webhookLog();
    expect(log.map((a) => a.status)).toEqual([0, 200]);
    expect(log[0]!.error).toMatch(/timeout/i);
  });

  it('resends delivered messages with the same message_id at duplicateRate', async () => {
    const hook = await receiver();
    const emu = await start({ webhookUrl: hook.url, duplicateRate: 1 });
    emu.cohorts.upsert({ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] });
    await emu.webhooksIdle(10_000);
    expect(hook.got).toHaveLength(2);
    expect(hook.got[0]!.body).toEqual(hook.got[1]!.body);
    expect(emu.webhookLog().map((a) => a.duplicate)).toEqual([false, true]);
    expect(emu.stats().webhooks).toMatchObject({ delivered: 1, duplicates: 1 });
  });

  it('reset() forgets cohorts, stats and queued webhooks', async () => {
    const hook = await receiver(() => 500);
    const emu = await start({ webhookUrl: hook.url, webhookBaseDelayMs: 60_000 });
    emu.cohorts.upsert({ id: 'c1', name: 'x', members: [{ user_id: 'alice' }] });
    await new Promise((resolve) => emu.onWebhook(resolve));
    expect(emu.pendingWebhooks()).toBe(1);
    emu.reset();
    expect(emu.pendingWebhooks()).toBe(0);
    expect(emu.cohorts.list()).toEqual([]);
    await emu.webhooksIdle(1000);
  });
});
