import { describe, expect, it } from 'vitest';
import { addSource } from '../../src/app/sources';
import { createStream, streamCounters } from '../../src/events/streams';
import { pruneExpired, retentionMs } from '../../src/jobs/retention';
import type { Context } from '../../src/store';
import { runSync } from '../../src/sync/run';
import { ledgerRows } from '../amplitude/fixtures';
import { describeEachDialect } from '../helpers/db';
import { seedStreamEvents } from '../helpers/seed';
import { cohortSync, range, reimport, setupApp } from '../sync/setup';

const DAY = 86_400_000;

describeEachDialect('retention', (db) => {
  async function inbox(
    ctx: Context,
    sourceId: string,
    rows: Array<{ id: string; at: number; applied?: boolean; error?: string }>,
  ) {
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
    const { row: stream } = await createStream(ctx, {
      name: 'retention',
      amplitudeApiKey: 'k',
      amplitudeUrl: 'http://127.0.0.1:9',
    });
    // Oldest first, as they arrive: ids grow with arrival time.
    const old = now - 8 * DAY;
    await seedStreamEvents(
      ctx,
      stream.id,
      [
        ...Array.from({ length: 30 }, (_, i) => ({ event_id: `old-f${i}`, status: 'forwarded' as const })),
        { event_id: 'old-pending', status: 'pending' },
        { event_id: 'old-dead', status: 'dead', reason: 'user_id too short' },
      ],
      old,
    );
    await seedStreamEvents(
      ctx,
      stream.id,
      [
        { event_id: 'new-f', status: 'forwarded' },
        { event_id: 'new-p', status: 'pending' },
      ],
      now - DAY,
    );
    const source = await addSource(ctx, {
      name: 'retention-src',
      api_key: 'k',
      secret_key: 's',
      api_url: 'http://127.0.0.1:9',
    });
    await inbox(ctx, source.id, [
      { id: 'old-applied', at: old, applied: true },
      { id: 'old-unapplied', at: old },
      { id: 'old-failed', at: old, error: 'cohort belongs to another source' },
      { id: 'new-applied', at: now - DAY, applied: true },
    ]);
    const before = await streamCounters(ctx, stream.id);
    expect(before).toMatchObject({ received: 34, forwarded: 31, dead_lettered: 1, pending: 2 });

    expect(await pruneExpired(ctx, { now, keepMs: 7 * DAY })).toMatchObject({ events: 30, webhooks: 1 });

    const left = await ctx.store.db
      .selectFrom('stream_events')
      .select('event_id')
      .where('stream_id', '=', stream.id)
      .orderBy('event_id')
      .execute();
    expect(left.map((r) => r.event_id)).toEqual(['new-f', 'new-p', 'old-dead', 'old-pending']);
    expect(await streamCounters(ctx, stream.id)).toEqual(before);
    const messages = await ctx.store.db
      .selectFrom('webhook_inbox')
      .select('message_id')
      .where('source_id', '=', source.id)
      .orderBy('message_id')
      .execute();
    expect(messages.map((m) => m.message_id)).toEqual(['new-applied', 'old-failed', 'old-unapplied']);

    // Nothing more to do until something else ages.
    expect(await pruneExpired(ctx, { now, keepMs: 7 * DAY })).toMatchObject({ events: 0, webhooks: 0 });
  });

  it('forgets users who left long ago and no longer carry the tag; one who comes back is added again', async () => {
    const { ctx } = db();
    const { emu, dest } = await setupApp(ctx, { users: range('r', 0, 12) });
    try {
      const { cohortId, sync } = await cohortSync(ctx, dest.id, range('r', 0, 10));
      await runSync(ctx, sync.id);
      // r0–r3 leave and their tags are removed; r4 leaves but its removal is still pending.
      await reimport(ctx, cohortId, range('r', 4, 10));
      await runSync(ctx, sync.id);
      await reimport(ctx, cohortId, range('r', 5, 10));
      await runSync(ctx, sync.id, { deliver: 'enqueue' });
      const now = Date.now();
      // r0–r1 left 8 days ago, r2–r3 yesterday; everyone else's rows are as old as r0's.
      const age = (ids: string[], at: number) =>
        ctx.store.db
          .updateTable('ledger')
          .set({ updated_at: at })
          .where('sync_id', '=', sync.id)
          .where('external_id', 'in', ids)
          .execute();
      await age([...range('r', 0, 2), ...range('r', 4, 10)], now - 8 * DAY);
      await age(range('r', 2, 4), now - DAY);

      expect((await pruneExpired(ctx, { now, keepMs: 7 * DAY })).ledger).toBe(2);
      const rows = await ledgerRows(ctx, sync.id);
      expect(rows.map((r) => r.external_id)).toEqual([...range('r', 2, 10)]);
      expect(rows.find((r) => r.external_id === 'r4')).toMatchObject({ desired: 0, confirmed: 1 });

      // r0 comes back: a new row, and the tag again.
      await reimport(ctx, cohortId, ['r0', ...range('r', 5, 10)]);
      const back = await runSync(ctx, sync.id);
      expect(back).toMatchObject({ status: 'completed', added: 1 });
      expect(emu.state.getUser('r0')).toMatchObject({ [sync.tag_key]: '1' });
      expect(emu.state.getUser('r4')?.[sync.tag_key]).toBeUndefined();
    } finally {
      await emu.close();
    }
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
