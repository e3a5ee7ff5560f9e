import { expect, it } from 'vitest';
import { addDestination } from '../../src/app/destinations';
import { addSource } from '../../src/app/sources';
import { checkWebhookBody } from '../../src/connectors/amplitude/webhook-payload';
import { pruneExpired } from '../../src/jobs/retention';
import { applyPendingWebhooks, storeWebhook } from '../../src/sync/cohort-webhooks';
import { createSync } from '../../src/sync/syncs';
import { describeDialects } from '../helpers/db';
import { planScope, readsAllDuring } from '../helpers/plans';

// The inbox keeps a retention period of cohort messages of up to ~100 kB each, and SQLite reaches
// the columns after `body` only through its overflow pages: the minute sweep for unapplied
// messages must not read them all.
describeDialects('cohort webhook query plans', (dialect) => {
  const scope = planScope(dialect);

  it('storing, applying, sweeping and pruning messages never scans the inbox or the ledger', async () => {
    const ctx = await scope.open();
    const source = await addSource(ctx, {
      name: 'plans',
      api_key: 'k',
      secret_key: 's',
      api_url: 'http://127.0.0.1:9',
    });
    const dest = await addDestination(ctx, {
      name: 'plans',
      app_id: '00000000-0000-4000-8000-0000000000aa',
      api_key: 'k',
      api_url: 'http://127.0.0.1:9',
      source_id: source.id,
    });
    const message = (i: number) =>
      JSON.stringify({
        cohort_id: 'coh_p',
        cohort_name: 'P',
        in_cohort: i % 2 === 0,
        computed_time: String(1000 + i),
        message_id: `m${i}`,
        users: [{ user_id: `u${i}` }, { user_id: 'u0' }],
      });
    const store = (text: string) => storeWebhook(ctx, source.id, checkWebhookBody(text), { text });
    await store(message(0));
    await applyPendingWebhooks(ctx);
    await createSync(ctx, { cohortId: 'coh_p', destinationId: dest.id, cadence: 'realtime' });

    const scans = await readsAllDuring(ctx, ['webhook_inbox', 'ledger'], async () => {
      for (let i = 1; i < 6; i++) {
        await store(message(i));
      }
      expect(await applyPendingWebhooks(ctx)).toMatchObject({ applied: 5, failed: 0 });
      await pruneExpired(ctx, { keepMs: 0 });
    });
    expect(scans).toEqual([]);
  });
});
