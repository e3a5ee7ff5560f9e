import { expect, it } from 'vitest';
import { AppLimiter, PER_USER_SPACING_MS } from '../../src/connectors/onesignal/limiter';
import { recordPacingHandoff, takeOverPacing } from '../../src/sync/handoff';
import { describeEachDialect } from '../helpers/db';

/** Well under a second: what "did not wait for the window" means on a busy test machine. */
const NO_WAIT_MS = 500;

/** Acquire, send, and get the answer at once. */
const send = (l: AppLimiter, user?: string) => l.acquire(user).then((settle) => settle());

describeEachDialect('pacing handoff between processes', (db) => {
  it('a limiter in another process takes over the app window and the users’ spacing', async () => {
    const { ctx } = db();
    const app = 'handoff-app';
    const previous = new AppLimiter(app, 5);
    const next = new AppLimiter(app, 5);

    // Nobody sent before: nothing to take over, the first send goes at once.
    await takeOverPacing(ctx, next);
    const t0 = performance.now();
    await send(next, 'first');
    expect(performance.now() - t0).toBeLessThan(NO_WAIT_MS);

    // The previous pass used the app's whole second (5 of 5), the last request for user u1.
    // (Its first answer comes after `first`, so the window opens by its age.)
    const answered = performance.now();
    for (const u of ['u5', 'u2', 'u3', 'u4', 'u1']) await send(previous, u);
    await recordPacingHandoff(ctx, previous);

    await takeOverPacing(ctx, next);
    // The window is full: the next grant waits until the first of those answers is a second old.
    await send(next, 'someone-else');
    expect(performance.now() - answered).toBeGreaterThanOrEqual(995);
    // u1 was answered last: its next request keeps a second's spacing from that answer.
    await send(next, 'u1');
    expect(performance.now() - answered).toBeGreaterThanOrEqual(PER_USER_SPACING_MS - 5);
  });

  it('a Retry-After pause goes with the app to the next process', async () => {
    const { ctx } = db();
    const app = 'handoff-pause-app';
    const previous = new AppLimiter(app, 100);
    const next = new AppLimiter(app, 100);
    await send(previous, 'u1');
    // OneSignal answered 429 with Retry-After: 2 as the previous pass ended.
    const told = Date.now();
    previous.onRateLimited(2_000);
    await recordPacingHandoff(ctx, previous);

    await takeOverPacing(ctx, next);
    await send(next, 'u2');
    // Nothing leaves before the Retry-After has passed, whichever process sends.
    expect(Date.now() - told).toBeGreaterThanOrEqual(1_995);
  });
});
