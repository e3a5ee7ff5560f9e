import { gzipSync } from 'node:zlib';
import { createInstance } from '@amplitude/analytics-node';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type AmplitudeEmulator,
  type AmplitudeEmulatorOptions,
  startAmplitudeEmulator,
} from '../../src/emulators/amplitude';

const KEY = 'events-project-key';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function start(opts: Partial<AmplitudeEmulatorOptions> = {}): Promise<AmplitudeEmulator> {
  const emu = await startAmplitudeEmulator({ projects: [{ apiKey: KEY, secretKey: 'events-secret' }], ...opts });
  cleanups.push(() => emu.close());
  return emu;
}

async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = { 'content-type': 'application/json' },
) {
  const payload = Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await request(url, { method: 'POST', headers, body: payload });
  return { status: res.statusCode, json: (await res.body.json()) as any };
}

const ev = (i: number, extra: Record<string, unknown> = {}) => ({
  event_type: '[Onesignal] Push Clicked',
  user_id: `user-${1000 + i}`,
  device_id: `device-${1000 + i}`,
  time: 1_708_559_115_228 + i,
  insert_id: `ins-${i}`,
  ...extra,
});

describe('amplitude emulator: HTTP V2 and Batch', () => {
  it('ingests a valid batch with the documented 200 body and exposes it for inspection', async () => {
    const emu = await start();
    const res = await post(`${emu.url}/2/httpapi`, { api_key: KEY, events: [ev(1), ev(2)] });
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      code: 200,
      events_ingested: 2,
      payload_size_bytes: expect.any(Number),
      server_upload_time: expect.any(Number),
    });
    const inspected = await request(`${emu.url}/_emulator/events?api_key=${KEY}`);
    const { events } = (await inspected.body.json()) as { events: Array<Record<string, unknown>> };
    expect(events.map((e) => [e.insert_id, e.user_id, e.event_type])).toEqual([
      ['ins-1', 'user-1001', '[Onesignal] Push Clicked'],
      ['ins-2', 'user-1002', '[Onesignal] Push Clicked'],
    ]);
    // /batch takes the same format.
    expect((await post(`${emu.url}/batch`, { api_key: KEY, events: [ev(3)] })).status).toBe(200);
    expect(emu.events.list(KEY)).toHaveLength(3);
  });

  it('answers each documented 400 body, and ingests nothing from a request with a bad event', async () => {
    const emu = await start();
    const url = `${emu.url}/2/httpapi`;
    expect((await post(url, '', {})).json).toEqual({ code: 400, error: 'Missing request body' });
    expect((await post(url, '{"api_key":')).json).toEqual({ code: 400, error: 'Invalid JSON request body' });
    expect((await post(url, { events: [ev(1)] })).json).toEqual({
      code: 400,
      error: 'Request missing required field',
      missing_field: 'api_key',
    });
    const badKey = await post(url, { api_key: 'nope', events: [ev(1)] });
    expect(badKey.status).toBe(400);
    expect(badKey.json.error.startsWith('Invalid API key')).toBe(true);
    expect((await post(url, { api_key: KEY })).json).toMatchObject({ code: 400, missing_field: 'events' });
    expect((await post(url, { api_key: KEY, events: ['x'] })).json).toEqual({ code: 400, error: 'Invalid event JSON' });

    const mixed = await post(url, {
      api_key: KEY,
      events: [
        ev(0),
        { user_id: 'user-12345' }, // no event_type
        { event_type: 'x' }, // no id at all
        ev(3, { time: '2024-01-01' }),
        ev(4, { user_id: 'abc', device_id: undefined }), // too short
        ev(5, { user_id: 'null' }), // blocked placeholder
        ev(6, { device_id: '00000000-0000-0000-0000-000000000000' }),
        ev(7, { event_properties: { text: 'x'.repeat(1025) } }),
        ev(8, { time: 1.5 }),
      ],
    });
    expect(mixed.status).toBe(400);
    expect(mixed.json).toEqual({
      code: 400,
      error: 'Invalid field values on some events',
      events_with_missing_fields: { event_type: [1], user_id: [2] },
      events_with_invalid_fields: { time: [3, 8], user_id: [5], device_id: [6], event_properties: [7] },
      events_with_invalid_id_lengths: { user_id: [4] },
    });
    expect(emu.events.list()).toEqual([]);
    expect(emu.stats().events.requests['400']).toBe(7);
  });

  it('honours options.min_id_length', async () => {
    const emu = await start();
    const short = { event_type: 'x', user_id: 'abc' };
    expect((await post(`${emu.url}/2/httpapi`, { api_key: KEY, events: [short] })).status).toBe(400);
    expect(
      (await post(`${emu.url}/2/httpapi`, { api_key: KEY, events: [short], options: { min_id_length: 3 } })).status,
    ).toBe(200);
  });

  it('answers 413 at maxEvents and at maxBytes (counted after gzip decompression)', async () => {
    const emu = await start({ maxEvents: 10, maxBytes: 5_000 });
    const url = `${emu.url}/2/httpapi`;
    const tooMany = await post(url, { api_key: KEY, events: Array.from({ length: 10 }, (_, i) => ev(i)) });
    expect(tooMany).toEqual({ status: 413, json: { code: 413, error: 'Payload too large' } });
    expect((await post(url, { api_key: KEY, events: Array.from({ length: 9 }, (_, i) => ev(i)) })).status).toBe(200);
    const big = {
      api_key: KEY,
      events: [
        ev(20, {
          event_properties: {
            a: 'x'.repeat(1000),
            b: 'y'.repeat(1000),
            c: 'z'.repeat(1000),
            d: 'w'.repeat(1000),
            e: 'v'.repeat(1000),
          },
        }),
      ],
    };
    const gz = gzipSync(JSON.stringify(big));
    expect(gz.length).toBeLessThan(5_000);
    const tooBig = await post(url, gz, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(tooBig.status).toBe(413);
  });

  it('accepts gzip request bodies', async () => {
    const emu = await start();
    const res = await post(`${emu.url}/2/httpapi`, gzipSync(JSON.stringify({ api_key: KEY, events: [ev(1)] })), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    expect(emu.events.list(KEY).map((e) => e.insert_id)).toEqual(['ins-1']);
    const corrupt = await post(`${emu.url}/2/httpapi`, Buffer.from('not gzip'), {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(corrupt.json).toEqual({ code: 400, error: 'Invalid JSON request body' });
  });

  it('throttles a user or device above epsThreshold with the documented 429 body, ingesting nothing of that request', async () => {
    const emu = await start({ epsThreshold: 5, epsWindowMs: 60_000 });
    const url = `${emu.url}/2/httpapi`;
    const hot = (i: number) => ({
      event_type: 'x',
      user_id: 'hot-user',
      device_id: `dev-${i}-abc`,
      insert_id: `hot-${i}`,
    });
    // 5 events/s over a 60 s window allows 300 per id; the 301st is over.
    expect((await post(url, { api_key: KEY, events: Array.from({ length: 299 }, (_, i) => hot(i)) })).status).toBe(200);
    const res = await post(url, { api_key: KEY, events: [ev(1), hot(500), ev(2), hot(501)] });
    expect(res.status).toBe(429);
    expect(res.json).toEqual({
      code: 429,
      error: 'Too many requests for some devices and users',
      eps_threshold: 5,
      throttled_devices: {},
      throttled_users: { 'hot-user': expect.any(Number) },
      throttled_events: [1, 3],
    });
    expect(emu.events.list(KEY)).toHaveLength(299);
    // Without the hot user's events the rest goes through.
    expect((await post(url, { api_key: KEY, events: [ev(1), ev(2)] })).status).toBe(200);
    expect(emu.stats().events.throttled).toBe(2);
  });

  it('dedupes on insert_id per device for the window: duplicates are accepted but stored once', async () => {
    const emu = await start();
    const url = `${emu.url}/2/httpapi`;
    expect((await post(url, { api_key: KEY, events: [ev(1)] })).json.events_ingested).toBe(1);
    expect((await post(url, { api_key: KEY, events: [ev(1), ev(1)] })).json.events_ingested).toBe(2);
    // Same insert_id on another device is a different event.
    expect((await post(url, { api_key: KEY, events: [ev(1, { device_id: 'other-device' })] })).status).toBe(200);
    expect(emu.events.list(KEY).map((e) => e.device_id)).toEqual(['device-1001', 'other-device']);
    expect(emu.stats().events).toMatchObject({ ingested: 2, duplicates: 2 });
  });

  it('forceNext scripts answers; an ingested-then-500 batch retried with the same insert_ids is stored once', async () => {
    const emu = await start();
    const url = `${emu.url}/2/httpapi`;
    emu.events.forceNext(503);
    expect(await post(url, { api_key: KEY, events: [ev(1)] })).toEqual({
      status: 503,
      json: { code: 503, error: 'Service Unavailable' },
    });
    expect(emu.events.list()).toHaveLength(0);

    emu.events.forceNext(500, undefined, 1, { ingest: true });
    expect((await post(url, { api_key: KEY, events: [ev(1), ev(2)] })).status).toBe(500);
    expect((await post(url, { api_key: KEY, events: [ev(1), ev(2)] })).status).toBe(200);
    expect(emu.events.list(KEY).map((e) => e.insert_id)).toEqual(['ins-1', 'ins-2']);
    expect(emu.stats().events).toMatchObject({ duplicates: 2, ingestedOnError: 1 });

    const custom = {
      code: 429,
      error: 'Too many requests for some devices and users',
      eps_threshold: 30,
      throttled_devices: {},
      throttled_users: { u: 31 },
      throttled_events: [0],
    };
    emu.events.forceNext(429, custom, 2);
    expect((await post(url, { api_key: KEY, events: [ev(3)] })).json).toEqual(custom);
    expect((await post(url, { api_key: KEY, events: [ev(3)] })).status).toBe(429);
    expect((await post(url, { api_key: KEY, events: [ev(3)] })).status).toBe(200);

    emu.events.forceNext(0);
    await expect(post(url, { api_key: KEY, events: [ev(4)] })).rejects.toThrow();
    // Also over HTTP.
    const force = await request(`${emu.url}/_emulator/events/force`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ status: 502, count: 1, ingest: false }),
    });
    expect(force.statusCode).toBe(200);
    await force.body.dump();
    expect((await post(url, { api_key: KEY, events: [ev(4)] })).status).toBe(502);
    const stats = (await (await request(`${emu.url}/_emulator/stats`)).body.json()) as any;
    expect(stats.events.requests).toMatchObject({ '200': 2, '429': 2, '500': 1, '502': 1, '503': 1, dropped: 1 });
  });

  it('injects random 5xx at errorRate; with ingestOnError some failed batches were still stored', async () => {
    const emu = await start({ seed: 7, faults: { events: { errorRate: 1 } } });
    const statuses = new Set<number>();
    for (let i = 0; i < 40; i++)
      statuses.add((await post(`${emu.url}/2/httpapi`, { api_key: KEY, events: [ev(i)] })).status);
    expect([...statuses].every((s) => [500, 502, 503, 504].includes(s))).toBe(true);
    expect(statuses.size).toBeGreaterThan(1);
    const { ingestedOnError } = emu.stats().events;
    expect(ingestedOnError).toBeGreaterThan(0);
    expect(emu.events.list(KEY)).toHaveLength(ingestedOnError);
    emu.setFaults({});
    expect((await post(`${emu.url}/2/httpapi`, { api_key: KEY, events: [ev(99)] })).status).toBe(200);
  });

  it('accepts events from the official @amplitude/analytics-node SDK', async () => {
    const emu = await start();
    const client = createInstance();
    await client.init(KEY, { serverUrl: `${emu.url}/2/httpapi`, flushIntervalMillis: 50, logLevel: 0 }).promise;
    const results = await Promise.all([
      client.track('[Onesignal] Push Sent', { message_id: 'm-1' }, { user_id: 'sdk-user-1' }).promise,
      client.track(
        '[Onesignal] Push Clicked',
        { message_id: 'm-1' },
        { user_id: 'sdk-user-1', device_id: 'sdk-device-1' },
      ).promise,
    ]);
    await client.flush().promise;
    expect(results.map((r) => r.code)).toEqual([200, 200]);
    const stored = emu.events.list(KEY);
    expect(stored.map((e) => e.event_type).sort()).toEqual(['[Onesignal] Push Clicked', '[Onesignal] Push Sent']);
    expect(stored.every((e) => typeof e.insert_id === 'string' && e.user_id === 'sdk-user-1')).toBe(true);
  });
});
