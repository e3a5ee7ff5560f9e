import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type PlannedEvent, performBatch, plan } from '../../src/connectors/amplitude/send-events';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { claimEvents, type ForwardTally, type OutboxLease, settleEvents } from '../../src/events/outbox';
import { receiveEvents } from '../../src/events/receive';
import { cachedStream, createStream } from '../../src/events/streams';
import type { Context } from '../../src/store';
import { describeEachDialect } from '../helpers/db';
import { nestedEvent } from './helpers';

const KEY = 'amp-stage-key';
const payload = (user: string | undefined, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ event_type: 'e', ...(user ? { user_id: user } : {}), insert_id: `i-${Math.random()}`, ...extra });
const indexes = (requests: PlannedEvent[][]) => requests.map((r) => r.map((e) => e.index));

describe('forwarding, build requests (the sendEvents action plans HTTP V2 requests)', () => {
  it('refuses id-less events with the reason and never puts them in a request', () => {
    const p = plan({ apiKey: KEY }, [payload('a'), payload(undefined), 'not json', payload('b')]);
    expect(indexes(p.requests)).toEqual([[0, 3]]);
    expect(p.refused.map((r) => r.index)).toEqual([1, 2]);
    expect(p.refused[0]!.reason).toMatch(/user_id or device_id/);
  });

  it('puts at most 30 events of one user in a request, filling it with others first come first served', () => {
    const payloads = [...Array.from({ length: 35 }, () => payload('hot')), payload('cool')];
    const p = plan({ apiKey: KEY }, payloads);
    expect(p.requests.map((r) => r.length)).toEqual([31, 5]);
    expect(p.requests[0]!.at(-1)!.index).toBe(35);
    expect(p.requests[1]!.every((e) => e.ids.user_id === 'hot')).toBe(true);
  });

  it('keeps every request under 2,000 events and under 1 MB', () => {
    const many = plan(
      { apiKey: KEY },
      Array.from({ length: 4_500 }, (_, i) => payload(`u${i}`)),
    );
    expect(many.requests.map((r) => r.length)).toEqual([1_999, 1_999, 502]);
    const big = 'x'.repeat(400_000);
    const heavy = plan(
      { apiKey: KEY },
      Array.from({ length: 5 }, (_, i) => payload(`u${i}`, { event_properties: { big } })),
    );
    expect(heavy.requests.map((r) => r.length)).toEqual([2, 2, 1]);
  });
});

describe('forwarding, send (the sendEvents action settles each event from the answer)', () => {
  let emu: AmplitudeEmulator;
  beforeAll(async () => {
    emu = await startAmplitudeEmulator({ projects: [{ apiKey: KEY, secretKey: 'sk' }], ingestOnError: false });
  });
  afterAll(async () => emu?.close());
  beforeEach(() => emu.reset());
  const settings = () => ({ baseUrl: emu.url, apiKey: KEY });

  it('a 400 naming events: those are dead with the reason, the rest resent and delivered', async () => {
    const { requests } = plan(settings(), [payload('user-a'), payload('user-b'), payload('user-c')]);
    emu.events.forceNext(400, { code: 400, error: 'Invalid field values', events_with_invalid_fields: { time: [1] } });
    const r = await performBatch(settings(), requests[0]!);
    expect(r.requests).toBe(2);
    expect(r.stopped).toBe(false);
    const byIndex = new Map(r.settled.map((s) => [s.index, s.settlement]));
    expect(byIndex.get(1)).toMatchObject({ status: 'dead', reason: expect.stringMatching(/Amplitude 400: .*time/) });
    expect(byIndex.get(0)).toEqual({ status: 'delivered' });
    expect(byIndex.get(2)).toEqual({ status: 'delivered' });
  });

  it('a refused API key stops the pass with the reason and settles nothing', async () => {
    const { requests } = plan({ apiKey: 'unknown' }, [payload('user-a')]);
    const r = await performBatch({ baseUrl: emu.url, apiKey: 'unknown' }, requests[0]!);
    expect(r).toMatchObject({ stopped: true, settled: [], fatal: expect.stringMatching(/Invalid API key/) });
  });

  it('an aborted pass sends nothing', async () => {
    const { requests } = plan(settings(), [payload('user-a')]);
    const r = await performBatch(settings(), requests[0]!, { signal: AbortSignal.abort() });
    expect(r).toMatchObject({ stopped: true, settled: [], requests: 0 });
    expect(emu.events.list(KEY)).toHaveLength(0);
  });
});

describeEachDialect('forwarding, claim and settle (the outbox stages)', (db) => {
  async function outboxOf(ctx: Context, name: string, n: number): Promise<string> {
    const { row } = await createStream(ctx, { name, amplitudeApiKey: KEY, amplitudeUrl: 'http://127.0.0.1:9' });
    const stream = await cachedStream(ctx, row.id);
    await receiveEvents(
      ctx,
      stream!,
      Array.from({ length: n }, (_, i) => nestedEvent({ id: `${name}-${i}` })),
    );
    return row.id;
  }
  const rowsOf = (ctx: Context, streamId: string) =>
    ctx.store.db
      .selectFrom('stream_events')
      .select(['id', 'status', 'attempts', 'next_attempt_at', 'reason', 'lease_owner'])
      .where('stream_id', '=', streamId)
      .orderBy('id')
      .execute();

  it('claim: leases due events oldest first; a leased event is not claimed again until its lease lapses', async () => {
    const { ctx } = db();
    const streamId = await outboxOf(ctx, 'claim', 5);
    const a: OutboxLease = { streamId, token: 'a', ms: 60_000 };
    const first = await claimEvents(ctx, a, 3);
    expect(first.map((e) => e.id)).toEqual([...first.map((e) => e.id)].sort((x, y) => x - y));
    expect(first).toHaveLength(3);
    const second = await claimEvents(ctx, { streamId, token: 'b', ms: 1 }, 10);
    expect(second).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 5));
    const third = await claimEvents(ctx, { streamId, token: 'c', ms: 60_000 }, 10);
    expect(third.map((e) => e.id)).toEqual(second.map((e) => e.id));
  });

  it('settle: writes each settlement on its event, only under the claim that holds it', async () => {
    const { ctx } = db();
    const streamId = await outboxOf(ctx, 'settle', 5);
    const lease: OutboxLease = { streamId, token: 'mine', ms: 60_000 };
    const claimed = await claimEvents(ctx, lease, 5);
    // The last event's lease passed to another forwarder meanwhile: nothing of ours may land on it.
    await ctx.store.db
      .updateTable('stream_events')
      .set({ lease_owner: 'theirs' })
      .where('id', '=', claimed[4]!.id)
      .execute();
    const tally: ForwardTally = { forwarded: 0, deadLettered: 0, requests: 0 };
    const retryAt = Date.now() + 30_000;
    await settleEvents(
      ctx,
      lease,
      claimed,
      [
        { index: 0, settlement: { status: 'delivered' } },
        { index: 1, settlement: { status: 'dead', reason: 'refused for good' } },
        { index: 2, settlement: { status: 'held', reason: 'throttled', retryAt } },
        { index: 3, settlement: { status: 'retry', reason: 'answered 503' } },
        { index: 4, settlement: { status: 'delivered' } },
      ],
      tally,
    );
    expect(tally).toEqual({ forwarded: 1, deadLettered: 1, requests: 0 });
    const rows = await rowsOf(ctx, streamId);
    expect(rows.map((r) => [r.status, Number(r.attempts), r.reason, r.lease_owner])).toEqual([
      ['forwarded', 0, null, null],
      ['dead', 0, 'refused for good', null],
      ['pending', 0, 'throttled', null],
      ['pending', 1, 'answered 503', null],
      ['pending', 0, null, 'theirs'],
    ]);
    expect(Number(rows[2]!.next_attempt_at)).toBe(retryAt);
    expect(Number(rows[3]!.next_attempt_at)).toBeGreaterThanOrEqual(Date.now() - 1_000);
    const stream = await ctx.store.db
      .selectFrom('streams')
      .select('forwarded_total')
      .where('id', '=', streamId)
      .executeTakeFirstOrThrow();
    expect(Number(stream.forwarded_total)).toBe(1);
  });
});
