import { spawn } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { forwardStream } from '../../src/events/forward';
import { receiveEvents } from '../../src/events/receive';
import { cachedStream, createStream, streamCounters } from '../../src/events/streams';
import type { Context } from '../../src/store';
import { describeEachDialect } from '../helpers/db';
import { nestedEvent, waitFor } from './helpers';

const KEY = 'amp-project-key';

async function newStream(ctx: Context, emu: AmplitudeEmulator, name: string, apiKey = KEY): Promise<string> {
  const { row } = await createStream(ctx, { name, amplitudeApiKey: apiKey, amplitudeUrl: emu.url });
  return row.id;
}

async function seed(ctx: Context, streamId: string, events: unknown[]): Promise<void> {
  const s = await cachedStream(ctx, streamId);
  for (let i = 0; i < events.length; i += 500) await receiveEvents(ctx, s!, events.slice(i, i + 500));
}

function manyEvents(prefix: string, n: number, opts: { externalId?: (i: number) => string } = {}) {
  return Array.from({ length: n }, (_, i) =>
    nestedEvent({
      id: `${prefix}-${i}`,
      externalId: opts.externalId?.(i) ?? `${prefix}-user-${i}`,
      subscriptionId: `${prefix}-sub-${i}`,
    }),
  );
}

/** insert_id → how many times the emulator stored it. */
function countByInsertId(emu: AmplitudeEmulator): Map<string, number> {
  const m = new Map<string, number>();
  for (const e of emu.events.list(KEY)) m.set(String(e.insert_id), (m.get(String(e.insert_id)) ?? 0) + 1);
  return m;
}

async function makeDue(ctx: Context, streamId: string): Promise<void> {
  await ctx.store.db
    .updateTable('stream_events')
    .set({ next_attempt_at: 0 })
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .execute();
}

describeEachDialect('event forwarder', (db) => {
  let emu: AmplitudeEmulator;
  beforeAll(async () => {
    emu = await startAmplitudeEmulator({ projects: [{ apiKey: KEY, secretKey: 'sk' }], ingestOnError: false });
  });
  afterAll(async () => emu?.close());
  beforeEach(() => emu.reset());

  it('forwards the outbox in large batches, each event once', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'happy');
    await seed(ctx, id, manyEvents('h', 2500));
    const r = await forwardStream(ctx, id);
    expect(r).toMatchObject({ forwarded: 2500, deadLettered: 0, pending: 0, status: 'active' });
    expect(r.requests).toBeLessThanOrEqual(3);
    const counts = countByInsertId(emu);
    expect(counts.size).toBe(2500);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await streamCounters(ctx, id)).toMatchObject({ received: 2500, forwarded: 2500, pending: 0 });
  });

  it('400 naming events: dead-letters exactly those, with the reason, and sends the rest', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'bad400');
    await seed(ctx, id, manyEvents('b', 5));
    emu.events.forceNext(400, {
      code: 400,
      error: 'Invalid field values on some events',
      events_with_invalid_fields: { time: [1] },
      events_with_missing_fields: { event_type: [3] },
    });
    const r = await forwardStream(ctx, id);
    expect(r).toMatchObject({ forwarded: 3, deadLettered: 2, pending: 0 });
    const dead = await ctx.store.db
      .selectFrom('stream_events')
      .select(['event_id', 'reason'])
      .where('stream_id', '=', id)
      .where('status', '=', 'dead')
      .orderBy('event_id')
      .execute();
    expect(dead.map((d) => d.event_id)).toEqual(['b-1', 'b-3']);
    expect(dead[0]!.reason).toMatch(/time/);
    expect(dead[1]!.reason).toMatch(/event_type/);
    expect([...countByInsertId(emu).keys()].sort()).toEqual(['os-b-0', 'os-b-2', 'os-b-4']);
  });

  it('413: splits the batch until it fits; a single event still too large is dead-lettered', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'split');
    await seed(ctx, id, manyEvents('s', 40));
    emu.events.forceNext(413, undefined, 2);
    const r = await forwardStream(ctx, id);
    expect(r).toMatchObject({ forwarded: 40, deadLettered: 0, pending: 0 });
    expect(r.requests).toBe(5); // 40 → 413, 20 → 413, 10, 10, then 20
    expect(countByInsertId(emu).size).toBe(40);

    const id2 = await newStream(ctx, emu, 'split-one');
    await seed(ctx, id2, manyEvents('s1', 1));
    emu.events.forceNext(413);
    const r2 = await forwardStream(ctx, id2);
    expect(r2).toMatchObject({ forwarded: 0, deadLettered: 1 });
  });

  it('429: holds only the throttled users for 30 s and sends everyone else; daily-quota users are dead-lettered', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'throttle');
    // 40 events of one hot user (over Amplitude's 30 events/s per id) and 10 of other users.
    await seed(ctx, id, [...manyEvents('hot', 40, { externalId: () => 'hot-user' }), ...manyEvents('cool', 10)]);
    const before = Date.now();
    const r = await forwardStream(ctx, id);
    expect(r.forwarded).toBe(40); // 30 of the hot user fit the first request, with the 10 others
    expect(r.pending).toBe(10);
    const held = await ctx.store.db
      .selectFrom('stream_events')
      .select(['payload', 'next_attempt_at', 'attempts', 'reason'])
      .where('stream_id', '=', id)
      .where('status', '=', 'pending')
      .execute();
    expect(held.every((h) => JSON.parse(h.payload).user_id === 'hot-user')).toBe(true);
    expect(held.every((h) => h.next_attempt_at >= before + 29_000 && h.attempts === 0)).toBe(true);
    expect(held[0]!.reason).toMatch(/429/);
    expect(r.nextAttemptAt).toBeGreaterThanOrEqual(before + 29_000);
    // The 30 s pause passes (moved forward by hand); Amplitude's 1 s window has to pass for real.
    const done = await waitFor(
      async () => {
        await makeDue(ctx, id);
        const again = await forwardStream(ctx, id);
        if (again.pending === 0) return again;
        await new Promise((res) => setTimeout(res, 250));
        return undefined;
      },
      20_000,
      'held events to be forwarded',
    );
    expect(done.pending).toBe(0);
    expect(countByInsertId(emu).size).toBe(50);

    const q = await newStream(ctx, emu, 'quota');
    await seed(ctx, q, [
      nestedEvent({ id: 'q-0', externalId: 'over-quota' }),
      nestedEvent({ id: 'q-1', externalId: 'fine-user' }),
    ]);
    emu.events.forceNext(429, {
      code: 429,
      error: 'Too many requests for some devices and users',
      exceeded_daily_quota_users: { 'over-quota': 1 },
      throttled_events: [],
    });
    const rq = await forwardStream(ctx, q);
    expect(rq).toMatchObject({ forwarded: 1, deadLettered: 1, pending: 0 });
  });

  it('5xx and dropped connections: backs off, keeps the events, and a resend is deduplicated by insert_id', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'retry');
    await seed(ctx, id, manyEvents('r', 20));
    // Amplitude ingested the batch but answered 500: the ambiguous case.
    emu.events.forceNext(500, undefined, 1, { ingest: true });
    // One round: the first retry may fall due at once (full jitter from 0 s to 1 s).
    const before = Date.now();
    const r1 = await forwardStream(ctx, id, { maxRounds: 1 });
    expect(r1).toMatchObject({ forwarded: 0, pending: 20 });
    const row = await ctx.store.db
      .selectFrom('stream_events')
      .select(['attempts', 'next_attempt_at', 'reason'])
      .where('stream_id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.attempts).toBe(1);
    expect(row.next_attempt_at).toBeGreaterThanOrEqual(before);
    expect(row.next_attempt_at).toBeLessThanOrEqual(Date.now() + 1_000);
    expect(row.reason).toMatch(/500/);
    await makeDue(ctx, id);
    emu.events.forceNext(0); // connection dropped
    expect((await forwardStream(ctx, id, { maxRounds: 1 })).pending).toBe(20);
    await makeDue(ctx, id);
    const r3 = await forwardStream(ctx, id);
    expect(r3).toMatchObject({ forwarded: 20, pending: 0 });
    const counts = countByInsertId(emu);
    expect(counts.size).toBe(20);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(emu.stats().events.duplicates).toBe(20);
  });

  it('an invalid API key pauses the stream with Amplitude’s message and sends nothing more', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'badkey', 'not-a-project-key');
    await seed(ctx, id, manyEvents('k', 3));
    const r = await forwardStream(ctx, id);
    expect(r).toMatchObject({ forwarded: 0, deadLettered: 0, pending: 3, status: 'paused' });
    const s = await ctx.store.db
      .selectFrom('streams')
      .select(['status', 'status_reason'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(s.status).toBe('paused');
    expect(s.status_reason).toMatch(/Invalid API key/);
    expect((await forwardStream(ctx, id)).requests).toBe(0);
  });

  it('two forwarders at once never send an event twice', async () => {
    const { ctx } = db();
    const id = await newStream(ctx, emu, 'concurrent');
    await seed(ctx, id, manyEvents('c', 3000));
    emu.setFaults({ events: { latencyMs: 50 } });
    const [a, b] = await Promise.all([
      forwardStream(ctx, id, { workerId: 'a' }),
      forwardStream(ctx, id, { workerId: 'b' }),
    ]);
    expect(a.forwarded + b.forwarded).toBe(3000);
    expect(emu.stats().events.duplicates).toBe(0);
    expect(countByInsertId(emu).size).toBe(3000);
  });

  it('a forwarder killed mid-request loses nothing and doubles nothing once another takes over', async () => {
    const { ctx, url } = db();
    const id = await newStream(ctx, emu, 'crash');
    await seed(ctx, id, manyEvents('x', 3000));
    // Slow answers, so the child is surely inside a request when it is killed; the emulator still
    // ingests what it received (the "may or may not have been accepted" case).
    emu.setFaults({ events: { latencyMs: 1_500 } });
    const child = spawn(
      process.execPath,
      ['bin/run-ts.mjs', 'test/events/fixtures/forward-child.ts', url, id, '1500'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise((res) => child.on('exit', res));
    await waitFor(
      async () =>
        (
          await ctx.store.db
            .selectFrom('stream_events')
            .select('id')
            .where('stream_id', '=', id)
            .where('lease_owner', 'like', 'child:%')
            .limit(1)
            .execute()
        ).length > 0,
      // The child compiles its TypeScript on start: slow on a loaded machine.
      90_000,
      'the child to claim events',
    );
    // Killed right after Amplitude stored its first batch: most likely before the child could
    // record the 200, the case where only insert_id dedupe prevents a double.
    await waitFor(() => emu.events.list(KEY).length > 0, 30_000, 'the first batch to reach Amplitude');
    child.kill('SIGKILL');
    await exited;
    emu.setFaults({ events: { latencyMs: 0 } });
    const final = await waitFor(
      async () => {
        const r = await forwardStream(ctx, id, { workerId: 'survivor' });
        return r.pending === 0 ? r : undefined;
      },
      30_000,
      'the survivor to drain the outbox',
    );
    expect(final.pending).toBe(0);
    const counts = countByInsertId(emu);
    expect(counts.size).toBe(3000);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(await streamCounters(ctx, id)).toMatchObject({
      received: 3000,
      forwarded: 3000,
      dead_lettered: 0,
      pending: 0,
    });
  });
});
