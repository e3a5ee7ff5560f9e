import { describe, expect, it } from 'vitest';
import { createSource } from '../../src/connectors/amplitude/sources';
import { createStream, streamCounters } from '../../src/events/streams';
import { pruneExpired, retentionMs } from '../../src/jobs/retention';
import type { Context } from '../../src/store';
import { describeEachDialect } from '../helpers/db';
import { seedStreamEvents } from '../helpers/seed';

const DAY = 86_400_000;

describeEachDialect('retention', (db) => {
  async function inbox(ctx: Context, sourceId: string, rows: Array<{ id: string; at: number; applied?: boolean; error?: string }>) {
    await ctx.store.db
      .insertInto('webhook_inbox')
      .values(
        rows.map((r) => ({
          source_id: sourceId,
          message_id: r.id,
          cohort_id: 'c1',
          cohort_name: null,
          in_cohort: 1,
          computed_time: r.at,
          body: '{"users":[]}',
          received_at: r.at,
          applied_at: r.applied ? r.at : null,
          error: r.error ?? null,
        })),
      )
      .execute();
  }

  it('lets go of forwarded events and applied messages past retention; keeps the rest and the counters', async () => {
    const { ctx } = db();
    const now = Date.now();
    const { row: stream } = await createStream(ctx, { name: 'retention', amplitudeApiKey: 'k', amplitudeUrl: 'http://127.0.0.1:9' });
    // Oldest first, as they arrive: ids grow with arrival time.
    const old = now - 8 * DAY;
    await seedStreamEvents(ctx, stream.id, [
      ...Array.from({ length: 30 }, (_, i) => ({ event_id: `old-f${i}`, status: 'forwarded' as const })),
      { event_id: 'old-pending', status: 'pending' },
      { event_id: 'old-dead', status: 'dead', reason: 'user_id too short' },
    ], old);
    await seedStreamEvents(ctx, stream.id, [{ event_id: 'new-f', status: 'forwarded' }, { event_id: 'new-p', status: 'pending' }], now - DAY);
    const source = await createSource(ctx, { name: 'retention-src', api_key: 'k', secret_key: 's', api_url: 'http://127.0.0.1:9' });
    await inbox(ctx, source.id, [
      { id: 'old-applied', at: old, applied: true },
      { id: 'old-unapplied', at: old },
      { id: 'old-failed', at: old, error: 'cohort belongs to another source' },
      { id: 'new-applied', at: now - DAY, applied: true },
    ]);
    const before = await streamCounters(ctx, stream.id);
    expect(before).toMatchObject({ received: 34, forwarded: 31, dead_lettered: 1, pending: 2 });

    expect(await pruneExpired(ctx, { now, keepMs: 7 * DAY })).toEqual({ events: 30, webhooks: 1 });

    const left = await ctx.store.db.selectFrom('stream_events').select('event_id').where('stream_id', '=', stream.id).orderBy('event_id').execute();
    expect(left.map((r) => r.event_id)).toEqual(['new-f', 'new-p', 'old-dead', 'old-pending']);
    expect(await streamCounters(ctx, stream.id)).toEqual(before);
    const messages = await ctx.store.db.selectFrom('webhook_inbox').select('message_id').where('source_id', '=', source.id).orderBy('message_id').execute();
    expect(messages.map((m) => m.message_id)).toEqual(['new-applied', 'old-failed', 'old-unapplied']);

    // Nothing more to do until something else ages.
    expect(await pruneExpired(ctx, { now, keepMs: 7 * DAY })).toEqual({ events: 0, webhooks: 0 });
  });
});

describe('retention setting', () => {
  it('defaults to 7 days and refuses what is not a positive number of days, naming the variable', () => {
    expect(retentionMs(undefined)).toBe(7 * DAY);
    expect(retentionMs('14')).toBe(14 * DAY);
    expect(retentionMs('0.5')).toBe(DAY / 2);
    expect(() => retentionMs('soon')).toThrow(/AMPSIGNAL_RETENTION_DAYS must be a number of days \(got "soon"\)/);
    expect(() => retentionMs('0')).toThrow(/AMPSIGNAL_RETENTION_DAYS must be more than 0 days/);
  });
});
