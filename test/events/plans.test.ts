import { expect, it } from 'vitest';
import { startAmplitudeEmulator } from '../../src/emulators/amplitude';
import { listDeadLetters, replayDeadLetters } from '../../src/events/dead-letters';
import { forwardStream } from '../../src/events/forward';
import { receiveEvents } from '../../src/events/receive';
import { cachedStream, createStream, streamCounters } from '../../src/events/streams';
import { releaseLeasesOf } from '../../src/jobs/leases';
import { pruneExpired } from '../../src/jobs/retention';
import { scrapeMetrics } from '../../src/server/api/metrics-scrape';
import { readStreams } from '../../src/server/api/queries';
import { describeDialects } from '../helpers/db';
import { planScope, readsAllDuring } from '../helpers/plans';
import { nestedEvent } from './helpers';

// The outbox holds every event of the retention period (millions on a busy app): receiving,
// forwarding, counting and pruning must seek, never read it all.
describeDialects('event stream query plans', (dialect) => {
  const scope = planScope(dialect);

  it('no statement of receive, forward, counters, metrics, dead letters, pruning or lease release scans the whole outbox', async () => {
    const ctx = await scope.open();
    const emu = await startAmplitudeEmulator({ projects: [{ apiKey: 'k', secretKey: 's' }], ingestOnError: false });
    scope.defer(() => emu.close());
    const { row } = await createStream(ctx, { name: 'plans', amplitudeApiKey: 'k', amplitudeUrl: emu.url });
    const stream = (await cachedStream(ctx, row.id))!;
    const events = Array.from({ length: 20 }, (_, i) => nestedEvent({ id: `p-${i}`, externalId: `user-${i}` }));

    const scans = await readsAllDuring(ctx, 'stream_events', async () => {
      await receiveEvents(ctx, stream, events);
      emu.events.forceNext(400, {
        code: 400,
        error: 'Invalid field values on some events',
        events_with_invalid_fields: { time: [1] },
      });
      await forwardStream(ctx, row.id);
      await streamCounters(ctx, row.id);
      await readStreams(ctx);
      await scrapeMetrics(ctx);
      await listDeadLetters(ctx, { stream: row.id, limit: 10 });
      await listDeadLetters(ctx, { limit: 10 });
      await replayDeadLetters(ctx, { stream: row.id });
      await replayDeadLetters(ctx, {});
      await pruneExpired(ctx, { keepMs: 0 });
      await releaseLeasesOf(ctx, ['gw:pool-dead']);
    });
    expect(scans).toEqual([]);
    // The check itself sees a read of everything: a table scan (by kind: no index leads with it)
    // and a walk of a full index (a count of every event).
    const probe = await readsAllDuring(ctx, 'stream_events', async () => {
      await ctx.store.db.selectFrom('stream_events').select('id').where('kind', '=', 'x').execute();
      await ctx.store.db
        .selectFrom('stream_events')
        .select((eb) => eb.fn.countAll().as('n'))
        .execute();
    });
    expect(probe).toHaveLength(2);
  });
});
