import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AppLimiter, limiterForApp, PER_USER_SPACING_MS } from '../../src/connectors/onesignal/limiter';
import { isAmpError } from '../../src/errors';

/** Largest number of timestamps inside any rolling window of `windowMs`. */
function maxInWindow(times: number[], windowMs = 1000): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < t.length; hi++) {
    while (t[hi]! - t[lo]! >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Acquire, send, and get the answer at once. */
const send = (l: AppLimiter, user?: string) => l.acquire(user).then((settle) => settle());

describe('AppLimiter', () => {
  it('paces thousands of concurrent callers under the rate in every rolling second', async () => {
    const l = new AppLimiter('app', 400);
    const times: number[] = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: 1000 }, () =>
        l.acquire().then((settle) => {
          times.push(performance.now());
          settle();
        }),
      ),
    );
    const elapsed = performance.now() - started;
    expect(maxInWindow(times)).toBeLessThanOrEqual(400);
    // 1,000 at 400 per 1,005 ms is about 2.5 s; faster would mean no pacing. The upper bound only
    // catches a stall (it is loose because these machines run many test files at once).
    expect(elapsed).toBeGreaterThan(2_400);
    expect(elapsed).toBeLessThan(10_000);
    expect(l.stats().queued).toBe(0);
  });

  it('spaces requests for one user by at least a second after the previous answer, without holding up others', async () => {
    const l = new AppLimiter('app', 1000);
    const times: Record<string, number[]> = { a: [], b: [], c: [] };
    const started = performance.now();
    let answeredA = 0;
    // The first request for `a` takes 150 ms to answer: the next one waits a second from then.
    const inFlight = (user: string, ms: number) => (settle: () => void) =>
      new Promise<void>((r) =>
        setTimeout(() => {
          if (user === 'a' && answeredA === 0) answeredA = performance.now();
          settle();
          r();
        }, ms),
      );
    await Promise.all([
      l.acquire('a').then((settle) => {
        times.a!.push(performance.now());
        inFlight('a', 150)(settle);
      }),
      l.acquire('a').then((settle) => {
        times.a!.push(performance.now());
        settle();
      }),
      l.acquire('b').then((settle) => {
        times.b!.push(performance.now());
        settle();
      }),
      l.acquire('c').then((settle) => {
        times.c!.push(performance.now());
        settle();
      }),
    ]);
    expect(times.a![1]! - answeredA).toBeGreaterThanOrEqual(1000);
    expect(times.a![1]! - times.a![0]!).toBeGreaterThanOrEqual(1150);
    expect(times.b![0]! - started).toBeLessThan(200);
    expect(times.c![0]! - started).toBeLessThan(200);
  });

  it('a 429 pauses the whole app until Retry-After and halves the rate', async () => {
    const l = new AppLimiter('app', 1000);
    await send(l, 'u1');
    const before = performance.now();
    l.onRateLimited(400);
    expect(l.stats().currentRate).toBe(500);
    // A second 429 of the same wave must not halve again.
    l.onRateLimited(400);
    expect(l.stats().currentRate).toBe(500);
    await Promise.all([send(l, 'u2'), send(l)]);
    expect(performance.now() - before).toBeGreaterThanOrEqual(390);
    expect(l.stats().rateLimited).toBe(2);
  });

  it('grows the rate back after quiet seconds (AIMD)', async () => {
    const l = new AppLimiter('app', 200);
    l.onRateLimited(0);
    expect(l.stats().currentRate).toBe(100);
    // ~2 s of traffic at the reduced rate, then the rate must have climbed.
    await Promise.all(Array.from({ length: 220 }, () => send(l)));
    expect(l.stats().currentRate).toBeGreaterThan(100);
    expect(l.stats().currentRate).toBeLessThanOrEqual(200);
  });

  it('counts a request until a window after its answer: slow answers never let a vendor second overfill', async () => {
    // However long a request takes, it arrives at the vendor somewhere between our send and its
    // answer; here the worst cases: half arrive the instant they are sent, half just before the
    // answer, with answers taking 0–300 ms.
    const l = new AppLimiter('app', 200);
    const arrivals: number[] = [];
    let seed = 7;
    const random = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    await Promise.all(
      Array.from({ length: 700 }, (_, i) =>
        l.acquire().then(
          (settle) =>
            new Promise<void>((done) => {
              const sent = performance.now();
              const latency = random() * 300;
              if (i % 2 === 0) arrivals.push(sent);
              setTimeout(() => {
                if (i % 2 === 1) arrivals.push(performance.now());
                settle();
                done();
              }, latency);
            }),
        ),
      ),
    );
    expect(arrivals).toHaveLength(700);
    expect(maxInWindow(arrivals)).toBeLessThanOrEqual(200);
  });

  it('an aborted caller leaves the queue with a catalogue error', async () => {
    const l = new AppLimiter('app', 1);
    await send(l);
    const ac = new AbortController();
    const p = l.acquire(undefined, ac.signal);
    ac.abort();
    const err = await p.catch((e: unknown) => e);
    expect(isAmpError(err)).toBe(true);
    expect(l.stats().queued).toBe(0);
  });

  it('is one limiter per app id, taking the strictest rate', () => {
    const app = randomUUID();
    const a = limiterForApp(app, 1000);
    const b = limiterForApp(app, 300);
    expect(b).toBe(a);
    expect(a.stats().configuredRate).toBe(300);
    expect(limiterForApp(randomUUID(), 1000)).not.toBe(a);
    expect(PER_USER_SPACING_MS).toBeGreaterThanOrEqual(1000);
  });
});
