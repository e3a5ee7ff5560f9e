import { expect, it } from 'vitest';
import { AppLimiter, PER_USER_SPACING_MS } from '../../src/connectors/onesignal/limiter';
import { awaitPacingHandoff, HANDOFF_QUIET_MS, recordPacingHandoff } from '../../src/sync/handoff';
import { describeEachDialect } from '../helpers/db';

/** Acquire, send, and get the answer at once. */
const send = (l: AppLimiter, user?: string) => l.acquire(user).then((settle) => settle());

describeEachDialect('pacing handoff between processes', (db) => {
  it('a limiter in another process takes over the app window and the users’ spacing', async () => {
    const { ctx } = db();
    const app = 'handoff-app';
    const previous = new AppLimiter(app, 5);
    const next = new AppLimiter(app, 5);

    const t0 = Date.now();
    await awaitPacingHandoff(ctx, next); // nobody sent before: nothing to take over
    expect(Date.now() - t0).toBeLessThan(HANDOFF_QUIET_MS / 2);

    // The previous pass used the app's whole second (5 of 5), the last request for user u1.
    const answered = performance.now();
    for (const u of ['u5', 'u2', 'u3', 'u4', 'u1']) await send(previous, u);
    await recordPacingHandoff(ctx, previous);

    await awaitPacingHandoff(ctx, next);
    // The window is full: the next grant waits until the first of those answers is a second old.
    await send(next, 'someone-else');
    expect(performance.now() - answered).toBeGreaterThanOrEqual(995);
    // u1 was answered last: its next request keeps a second's spacing from that answer.
    const before = performance.now();
    await send(next, 'u1');
    expect(performance.now() - answered).toBeGreaterThanOrEqual(PER_USER_SPACING_MS - 5);
    expect(performance.now() - before).toBeGreaterThan(0);

    // The same limiter goes on with its own state: no further takeover after it records.
    await recordPacingHandoff(ctx, next);
    const t1 = Date.now();
    await awaitPacingHandoff(ctx, next);
    expect(Date.now() - t1).toBeLessThan(HANDOFF_QUIET_MS / 2);
  });

  it('without recorded windows (an older process) the new limiter waits out a full second', async () => {
    const { ctx } = db();
    const app = 'handoff-legacy';
    const endedBy = Date.now();
    await ctx.store.db.insertInto('pacing_handoffs').values({ app_id: app, limiter_id: 'gone', ended_at: endedBy, state: null }).execute();
    await awaitPacingHandoff(ctx, new AppLimiter(app, 100));
    // A timer may fire a millisecond early against Date.now().
    expect(Date.now() - endedBy).toBeGreaterThanOrEqual(HANDOFF_QUIET_MS - 5);
  });

  it('an abort ends that wait (a stopping worker does not hold its job)', async () => {
    const { ctx } = db();
    const app = 'handoff-abort';
    await ctx.store.db.insertInto('pacing_handoffs').values({ app_id: app, limiter_id: 'gone', ended_at: Date.now(), state: null }).execute();
    const ac = new AbortController();
    const t0 = Date.now();
    const waiting = awaitPacingHandoff(ctx, new AppLimiter(app, 100), ac.signal);
    ac.abort();
    await waiting;
    expect(Date.now() - t0).toBeLessThan(HANDOFF_QUIET_MS / 2);
  });
});
