import { expect, it } from 'vitest';
import { streamActivity } from '../../src/events/streams';
import { describeEachDialect } from '../helpers/db';
import { seedStream, seedStreamEvents } from '../helpers/seed';

const MIN = 60_000;

describeEachDialect('stream activity per minute', (db) => {
  it('counts each event in the minute it was received and, if forwarded, the minute it was forwarded', async () => {
    const { ctx } = db();
    await seedStream(ctx, { id: 'str_act', name: 'activity', amplitude_api_key: 'k', webhook_secret: 's' });
    const now = Date.UTC(2026, 11, 2, 12, 30, 30); // 12:30:30
    const at = (minute: number, second = 10) => Date.UTC(2026, 11, 2, 12, minute, second);
    await seedStreamEvents(ctx, 'str_act', [
      // Received 12:28, forwarded 12:29.
      { event_id: 'a', status: 'forwarded', received_at: at(28), forwarded_at: at(29) },
      { event_id: 'b', status: 'forwarded', received_at: at(28, 50), forwarded_at: at(29) },
      // Received 12:30, still pending; another dead.
      { event_id: 'c', status: 'pending', received_at: at(30) },
      { event_id: 'd', status: 'dead', received_at: at(30, 20) },
      // Received before the window, forwarded inside it: counts as forwarded only.
      { event_id: 'e', status: 'forwarded', received_at: at(25), forwarded_at: at(30) },
    ]);
    const a = await streamActivity(ctx, 'str_act', { minutes: 5, now });
    expect(a.minutes).toEqual([26, 27, 28, 29, 30].map((m) => at(m, 0)));
    expect(a.received).toEqual([0, 0, 2, 0, 2]);
    expect(a.forwarded).toEqual([0, 0, 0, 2, 1]);
    expect(a.minutes.at(-1)! + MIN).toBeGreaterThan(now);
  });
});
