import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { FAULT_KINDS, rollFault } from '../../src/emulators/faults';
import { type OneSignalEmulator, startOneSignalEmulator } from '../../src/emulators/onesignal/index';

const APP = 'aaaaaaaa-0000-4000-8000-000000000001';
const KEY = 'key-one';
const AMP = { apiKey: 'faults-project-key', secretKey: 'faults-project-secret' };
const basic = `Basic ${Buffer.from(`${AMP.apiKey}:${AMP.secretKey}`).toString('base64')}`;

/** A client that gives up after 300 ms, like any client's timeout, only shorter: only for requests meant to hang. */
const impatient = new Agent({ headersTimeout: 300, bodyTimeout: 300, connections: 32 });
/** A client that waits for whatever answer comes, however slow the machine. */
const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0, connections: 32 });
/**
 * A patient client with one connection: what it sends after reading an answer goes on that
 * answer's connection (a pool may open a new one meanwhile, whose first request is excused).
 */
const single = new Agent({ headersTimeout: 0, bodyTimeout: 0, connections: 1 });
afterAll(async () => {
  await impatient.close();
  await patient.close();
  await single.close();
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function oneSignal(faults: Record<string, number>): Promise<OneSignalEmulator> {
  const emu = await startOneSignalEmulator({
    apps: [{ appId: APP, apiKey: KEY }],
    users: { mode: 'seeded', count: 50 },
    faults,
  });
  cleanups.push(() => emu.close());
  return emu;
}

async function amplitude(faults: Record<string, number>): Promise<AmplitudeEmulator> {
  const emu = await startAmplitudeEmulator({
    projects: [AMP],
    pollsBeforeReady: 0,
    redirectAbove: 1,
    cohorts: [{ id: 'c1', name: 'C1', members: [{ user_id: 'u1' }, { user_id: 'u2' }] }],
    faults,
  });
  cleanups.push(() => emu.close());
  return emu;
}

interface Outcome {
  status?: number;
  retryAfter?: string;
  json?: any;
  error?: string;
  ms: number;
}

async function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: unknown,
  dispatcher: Agent = patient,
): Promise<Outcome> {
  const t0 = performance.now();
  try {
    const res = await request(url, {
      method: method as 'GET',
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher,
      maxRedirections: 0,
    } as Parameters<typeof request>[1]);
    const text = await res.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    const retryAfter = res.headers['retry-after'];
    return {
      status: res.statusCode,
      json,
      ms: performance.now() - t0,
      ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
    };
  } catch (e) {
    return { error: (e as { code?: string }).code ?? String(e), ms: performance.now() - t0 };
  }
}

const patch = (emu: OneSignalEmulator, user: string, tags: Record<string, string>, dispatcher = patient) =>
  send(
    `${emu.url}/apps/${APP}/users/by/external_id/${user}`,
    'PATCH',
    { authorization: `Key ${KEY}` },
    { properties: { tags } },
    dispatcher,
  );

const track = (emu: AmplitudeEmulator, users: string[], tag = 'x', dispatcher = patient) =>
  send(
    `${emu.url}/2/httpapi`,
    'POST',
    {},
    {
      api_key: AMP.apiKey,
      events: users.map((u, i) => ({ event_type: 'e', user_id: u, insert_id: `${tag}-${u}-${i}` })),
    },
    dispatcher,
  );

describe('fault dice', () => {
  it('splits faultRate evenly over the five kinds and adds the kinds’ own rates', () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const counts = new Map<string, number>();
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const k = rollFault({ faultRate: 0.2, lostRate: 0.1 }, random) ?? 'none';
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const k of FAULT_KINDS) {
      const expected = k === 'lost' ? 0.14 : 0.04;
      expect(Math.abs(counts.get(k)! / n - expected)).toBeLessThan(0.01);
    }
    expect(Math.abs(counts.get('none')! / n - 0.7)).toBeLessThan(0.01);
    expect(rollFault({}, random)).toBeUndefined();
    expect(rollFault({ errorRate: 1 }, random)).toBe('error');
  });
});

describe('OneSignal emulator: fault modes', () => {
  it('timeout: holds the request past the client’s timeout and applies nothing', async () => {
    const emu = await oneSignal({ timeoutRate: 1 });
    const r = await patch(emu, 'user-1', { a: '1' }, impatient);
    expect(r.error).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(emu.state.getUser('user-1')).toEqual({});
    expect(emu.state.stats().timedOut).toBe(1);
  });

  it('lost: applies the change, then drops the answer', async () => {
    const emu = await oneSignal({ lostRate: 1 });
    const r = await patch(emu, 'user-1', { a: '1' });
    expect(r.status).toBeUndefined();
    expect(r.error).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    expect(emu.state.getUser('user-1')).toEqual({ a: '1' });
    expect(emu.state.stats().lost).toBe(1);
  });

  it('throttle: 429 with Retry-After; requests inside the announced window are counted, later ones not', async () => {
    const emu = await oneSignal({ throttleRate: 1, retryAfterSeconds: 3 });
    const r = await patch(emu, 'user-1', { a: '1' }, single);
    expect(r.status).toBe(429);
    expect(r.retryAfter).toBe('3');
    expect(r.json).toEqual({ errors: ['API rate limit exceeded'], limit: 'App ID' });
    emu.setFaults({ throttleRate: 0 });
    // Too early: sent after the 429 was read (on its connection), inside the window (answered
    // normally here, but counted).
    expect((await patch(emu, 'user-2', { a: '1' }, single)).status).toBe(202);
    expect(emu.state.stats().retryAfterViolations).toBe(1);
    await sleep(3100);
    expect((await patch(emu, 'user-3', { a: '1' })).status).toBe(202);
    expect(emu.state.stats()).toMatchObject({ throttled: 1, retryAfterViolations: 1 });
    expect(emu.state.stats().byApp[APP]!.retryAfterViolations).toBe(1);
  });

  it('requests already in flight when a 429 is answered are not counted; one sent after it was read is', async () => {
    const emu = await oneSignal({ retryAfterSeconds: 5 });
    // Ten open connections, each sending at once: the first answered 429 opens the window while
    // the others are already on their way (none of them could have read it).
    const racers = new Agent({ connections: 10 });
    try {
      await Promise.all(Array.from({ length: 10 }, (_, i) => patch(emu, `user-${20 + i}`, { a: '1' }, racers)));
      emu.setFaults({ throttleRate: 1 });
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) => patch(emu, `user-${i}`, { a: '1' }, racers)),
      );
      expect(answers.every((a) => a.status === 429)).toBe(true);
      expect(emu.state.stats()).toMatchObject({ throttled: 10, retryAfterViolations: 0 });
      emu.setFaults({ throttleRate: 0 });
      // Sent after the 429s were read: inside the announced window.
      await patch(emu, 'user-11', { a: '1' }, racers);
      expect(emu.state.stats().retryAfterViolations).toBe(1);
    } finally {
      await racers.close();
    }
  });

  it('a client that ignores Retry-After is counted on every connection of its pool after one request', async () => {
    const emu = await oneSignal({ retryAfterSeconds: 3 });
    const pool = new Agent({ connections: 4 });
    const round = (n: number) =>
      Promise.all(Array.from({ length: 4 }, (_, i) => patch(emu, `user-${n * 4 + i}`, { a: '1' }, pool)));
    try {
      await round(0);
      emu.setFaults({ throttleRate: 1, retryAfterSeconds: 3 });
      // The first round is in flight when the window opens; every later one is sent after the
      // 429s were read, each on a connection that carried one.
      for (let n = 1; n <= 5; n++) expect((await round(n)).every((a) => a.status === 429)).toBe(true);
      expect(emu.state.stats()).toMatchObject({ throttled: 20, retryAfterViolations: 16 });
    } finally {
      await pool.close();
    }
  });

  it('a request on a connection idle since before the window is not counted, however late; its next one is', async () => {
    const emu = await oneSignal({ retryAfterSeconds: 3 });
    const idle = new Agent({ connections: 1 });
    try {
      expect((await patch(emu, 'user-1', { a: '1' }, idle)).status).toBe(202);
      emu.setFaults({ throttleRate: 1 });
      expect((await patch(emu, 'user-2', { a: '1' })).status).toBe(429);
      emu.setFaults({ throttleRate: 0 });
      // The vendor cannot tell this one from a request sent before the 429 was read and
      // delayed on the way (a loaded machine delays them past a second).
      await sleep(800);
      expect((await patch(emu, 'user-3', { a: '1' }, idle)).status).toBe(202);
      expect(emu.state.stats().retryAfterViolations).toBe(0);
      expect((await patch(emu, 'user-4', { a: '1' }, idle)).status).toBe(202);
      expect(emu.state.stats().retryAfterViolations).toBe(1);
    } finally {
      await idle.close();
    }
  });

  it('a per-user 429 announces a window for that user only', async () => {
    const emu = await oneSignal({});
    expect((await patch(emu, 'user-1', { a: '1' })).status).toBe(202);
    const limited = await patch(emu, 'user-1', { a: '2' });
    expect(limited.status).toBe(429);
    expect(limited.retryAfter).toBe('1');
    expect((await patch(emu, 'user-2', { a: '1' })).status).toBe(202);
    expect(emu.state.stats()).toMatchObject({ perUserViolations: 1, retryAfterViolations: 0 });
    // The same user again before Retry-After: a violation of both.
    expect((await patch(emu, 'user-1', { a: '3' })).status).toBe(429);
    expect(emu.state.stats()).toMatchObject({ perUserViolations: 2, retryAfterViolations: 1 });
  });

  it('faultRate deals every kind; settable over HTTP', async () => {
    // 300 distinct users, so each request's effect (or its absence) can be read back. A hung
    // request is closed by the emulator after hangMs and the client waits as long as it takes,
    // so how fast the machine answers decides nothing: every request ends as the fault dealt it.
    const emu = await startOneSignalEmulator({
      apps: [{ appId: APP, apiKey: KEY }],
      users: { mode: 'seeded', count: 300 },
      perUserPerSecond: 0,
      rateLimitPerSecond: 1_000_000,
    });
    cleanups.push(() => emu.close());
    const set = await send(
      `${emu.url}/_emulator/faults`,
      'POST',
      {},
      { faultRate: 0.5, retryAfterSeconds: 1, hangMs: 100 },
    );
    expect(set.json.faults).toMatchObject({ faultRate: 0.5, retryAfterSeconds: 1, hangMs: 100 });
    const outcomes = await Promise.all(Array.from({ length: 300 }, (_, i) => patch(emu, `user-${i}`, { k: `${i}` })));
    const s = emu.state.stats();
    for (const k of ['dropped', 'faulted', 'timedOut', 'lost', 'throttled'] as const) expect(s[k]).toBeGreaterThan(0);
    const closed = outcomes.filter((o) => o.error !== undefined);
    expect(closed.every((o) => /UND_ERR_SOCKET|ECONNRESET/.test(o.error!))).toBe(true);
    // Drops, hangs and lost answers end without an answer; 5xx and 429 are answered; the rest applied.
    expect(closed).toHaveLength(s.dropped + s.timedOut + s.lost);
    expect(outcomes.filter((o) => o.status !== undefined && o.status >= 500)).toHaveLength(s.faulted);
    expect(outcomes.filter((o) => o.status === 429 && o.retryAfter === '1')).toHaveLength(s.throttled);
    const ok = outcomes.filter((o) => o.status === 202).length;
    expect(ok).toBe(300 - s.dropped - s.faulted - s.timedOut - s.lost - s.throttled);
    // A hung request was held at least hangMs (a lower bound: a slow machine only adds to it).
    expect(closed.filter((o) => o.ms >= 95).length).toBeGreaterThanOrEqual(s.timedOut);
    // Only answered successes and lost answers changed a user.
    const changed = Array.from({ length: 300 }, (_, i) => emu.state.getUser(`user-${i}`)?.k === `${i}`);
    expect(changed.filter(Boolean)).toHaveLength(ok + s.lost);
  });
});

describe('Amplitude emulator: fault modes', () => {
  it('cohorts: a lost request step spends a download the client never hears of', async () => {
    const emu = await amplitude({});
    emu.setFaults({ cohorts: { lostRate: 1 } });
    const r = await send(`${emu.url}/api/5/cohorts/request/c1`, 'GET', { authorization: basic });
    expect(r.error).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    expect(emu.cohorts.downloads()).toBe(1);
    expect(emu.stats().cohorts.faults.lost).toBe(1);
  });

  it('cohorts: timeouts and 429s with Retry-After on every step, the pre-signed file URL included', async () => {
    const emu = await amplitude({});
    const req = await send(`${emu.url}/api/5/cohorts/request/c1`, 'GET', { authorization: basic });
    expect(req.status).toBe(202);
    const status = await send(`${emu.url}/api/5/cohorts/request-status/${req.json.request_id}`, 'GET', {
      authorization: basic,
    });
    expect(status.status).toBe(200);

    emu.setFaults({ cohorts: { timeoutRate: 1 } });
    const hung = await send(
      `${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`,
      'GET',
      { authorization: basic },
      undefined,
      impatient,
    );
    expect(hung.error).toBe('UND_ERR_HEADERS_TIMEOUT');

    emu.setFaults({});
    const file = await send(`${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`, 'GET', {
      authorization: basic,
    });
    expect(file.status).toBe(302);
    emu.setFaults({ cohorts: { errorRate: 1 } });
    const link = await send(`${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`, 'GET', {
      authorization: basic,
    });
    expect(link.status).toBeGreaterThanOrEqual(500);

    emu.setFaults({ cohorts: { throttleRate: 1, retryAfterSeconds: 3 } });
    const t = await send(`${emu.url}/api/3/cohorts`, 'GET', { authorization: basic }, undefined, single);
    expect(t.status).toBe(429);
    expect(t.retryAfter).toBe('3');
    emu.setFaults({});
    expect((await send(`${emu.url}/api/3/cohorts`, 'GET', { authorization: basic }, undefined, single)).status).toBe(
      200,
    );
    expect(emu.stats().cohorts.retryAfterViolations).toBe(1);
    await sleep(3100);
    expect((await send(`${emu.url}/api/3/cohorts`, 'GET', { authorization: basic })).status).toBe(200);
    expect(emu.stats().cohorts.retryAfterViolations).toBe(1);
    expect(emu.stats().cohorts.faults).toMatchObject({ timeout: 1, error: 1, throttle: 1 });
  });

  it('cohorts: the pre-signed file URL drops, hangs and fails too', async () => {
    const emu = await amplitude({});
    const req = await send(`${emu.url}/api/5/cohorts/request/c1`, 'GET', { authorization: basic });
    await send(`${emu.url}/api/5/cohorts/request-status/${req.json.request_id}`, 'GET', { authorization: basic });
    const file = await send(`${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`, 'GET', {
      authorization: basic,
    });
    const location = (await request(`${emu.url}/api/5/cohorts/request/${req.json.request_id}/file`, {
      headers: { authorization: basic },
    }).then(async (r) => {
      await r.body.dump();
      return r.headers.location;
    })) as string;
    expect(file.status).toBe(302);
    emu.setFaults({ cohorts: { dropRate: 1 } });
    expect((await send(location, 'GET', {})).error).toMatch(/UND_ERR_SOCKET|ECONNRESET/);
    emu.setFaults({ cohorts: { timeoutRate: 1 } });
    expect((await send(location, 'GET', {}, undefined, impatient)).error).toBe('UND_ERR_HEADERS_TIMEOUT');
    emu.setFaults({ cohorts: { throttleRate: 1 } });
    const slow = await send(location, 'GET', {});
    expect(slow.status).toBe(503);
    expect(String(slow.json)).toMatch(/SlowDown/);
    emu.setFaults({});
    expect((await send(location, 'GET', {})).status).toBe(200);
  });

  it('events: lost answers are ingested, timeouts are not; a throttled user inside Retry-After is counted', async () => {
    const emu = await amplitude({});
    emu.setFaults({ events: { lostRate: 1 } });
    expect(await track(emu, ['user-aaaaa'], 'lost')).toMatchObject({
      error: expect.stringMatching(/UND_ERR_SOCKET|ECONNRESET/),
    });
    expect(emu.events.list()).toHaveLength(1);

    emu.setFaults({ events: { timeoutRate: 1 } });
    expect((await track(emu, ['user-bbbbb'], 'hang', impatient)).error).toBe('UND_ERR_HEADERS_TIMEOUT');
    expect(emu.events.list()).toHaveLength(1);

    emu.setFaults({ events: { throttleRate: 1, retryAfterSeconds: 3 } });
    const t = await track(emu, ['user-ccccc', 'user-ddddd'], 'thr', single);
    expect(t.status).toBe(429);
    expect(t.retryAfter).toBe('3');
    expect(t.json).toMatchObject({
      code: 429,
      throttled_users: { 'user-ccccc': expect.any(Number), 'user-ddddd': expect.any(Number) },
      throttled_events: [0, 1],
    });
    emu.setFaults({});
    // Another user is free to go; a throttled one inside the window is counted.
    expect((await track(emu, ['user-eeeee'], 'free', single)).status).toBe(200);
    expect(emu.stats().events.retryAfterViolations).toBe(0);
    expect((await track(emu, ['user-ccccc'], 'early', single)).status).toBe(200);
    expect(emu.stats().events.retryAfterViolations).toBe(1);
    await sleep(3100);
    expect((await track(emu, ['user-ddddd'], 'late')).status).toBe(200);
    expect(emu.stats().events.retryAfterViolations).toBe(1);
    expect(emu.stats().events.faults).toMatchObject({ lost: 1, timeout: 1, throttle: 1 });
  });
});
