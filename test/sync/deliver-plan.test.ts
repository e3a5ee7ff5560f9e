import { expect, it } from 'vitest';
import { releaseLeasesOf } from '../../src/jobs/leases';
import { pruneExpired } from '../../src/jobs/retention';
import { scrapeMetrics } from '../../src/server/api/metrics-scrape';
import { runSync } from '../../src/sync/run';
import { describeDialects } from '../helpers/db';
import { planScope, readsAllDuring } from '../helpers/plans';
import { cohortSync, range, reimport, setupApp } from './setup';

// A delivery pass touches the users it delivers to, not the whole ledger: with a million-member
// sync, one full scan per claimed chunk stalled the sender for a tenth of a second each time.
describeDialects('delivery query plans', (dialect) => {
  const scope = planScope(dialect);

  it('no statement of a run (diff, delivery, counters), a metrics scrape or pruning reads the whole ledger', async () => {
    const ctx = await scope.open();
    const { emu, dest } = await setupApp(ctx, { users: range('u', 0, 60) });
    scope.defer(() => emu.close());
    const { cohortId, sync } = await cohortSync(ctx, dest.id, range('u', 0, 40));
    await runSync(ctx, sync.id);
    await reimport(ctx, cohortId, range('u', 10, 60));

    let r: Awaited<ReturnType<typeof runSync>> | undefined;
    const scans = await readsAllDuring(ctx, 'ledger', async () => {
      r = await runSync(ctx, sync.id);
      await scrapeMetrics(ctx);
      await pruneExpired(ctx, { keepMs: 0 });
    });
    expect(r).toMatchObject({ status: 'completed', added: 20, removed: 10, delivered: 30 });
    expect(scans).toEqual([]);
    // A dead worker's leases are released through the same index.
    expect(await readsAllDuring(ctx, 'ledger', () => releaseLeasesOf(ctx, ['gw:pool-dead']))).toEqual([]);
  });
});
