import { expect, it } from 'vitest';
import { AppLimiter } from '../../src/connectors/onesignal/limiter';
import { awaitPacingHandoff, HANDOFF_QUIET_MS, recordPacingHandoff } from '../../src/sync/handoff';
import { describeEachDialect } from '../helpers/db';

describeEachDialect('pacing handoff between processes', (db) => {
  it('a new limiter waits out the previous sender’s window; the same limiter goes on at once', async () => {
    const { ctx } = db();
    const app = 'handoff-app';
    const previous = new AppLimiter(app, 100);
    const next = new AppLimiter(app, 100);

    const t0 = Date.now();
    await awaitPacingHandoff(ctx, next, undefined); // nobody sent before: no wait
    expect(Date.now() - t0).toBeLessThan(HANDOFF_QUIET_MS / 2);

    // The pass ends at or after `endedBy`; the record is written after that.
    const endedBy = Date.now();
    await recordPacingHandoff(ctx, previous);
    const recordedAt = Date.now();
    await awaitPacingHandoff(ctx, previous, undefined);
    expect(Date.now() - recordedAt).toBeLessThan(HANDOFF_QUIET_MS / 2);

    await awaitPacingHandoff(ctx, next, undefined);
    // A timer may fire a millisecond early against Date.now().
    expect(Date.now() - endedBy).toBeGreaterThanOrEqual(HANDOFF_QUIET_MS - 5);

    // Once the new limiter has sent, it owns the app: no further waits for it.
    await recordPacingHandoff(ctx, next);
    const t1 = Date.now();
    await awaitPacingHandoff(ctx, next, undefined);
    expect(Date.now() - t1).toBeLessThan(HANDOFF_QUIET_MS / 2);
  });

  it('an abort ends the wait (a stopping worker does not hold its job)', async () => {
    const { ctx } = db();
    const app = 'handoff-abort';
    await recordPacingHandoff(ctx, new AppLimiter(app, 100));
    const ac = new AbortController();
    const t0 = Date.now();
    const waiting = awaitPacingHandoff(ctx, new AppLimiter(app, 100), ac.signal);
    ac.abort();
    await waiting;
    expect(Date.now() - t0).toBeLessThan(HANDOFF_QUIET_MS / 2);
  });
});
