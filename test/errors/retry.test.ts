import { describe, expect, it } from 'vitest';
import { AmpError, type Backoff, delay, retryDelayMs, withRetries } from '../../src/errors';
import { caught } from '../helpers/errors';

const policy: Backoff = { baseMs: 100, capMs: 1_000 };

/** A seeded generator (mulberry32), so the spread is checked on the same draws every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the retry policy', () => {
  it('waits from 0 up to base × 2^(attempt−1): the extremes of the dice are the bounds', () => {
    expect(retryDelayMs(policy, 1, undefined, () => 0)).toBe(0);
    expect(retryDelayMs(policy, 1, undefined, () => 0.999999)).toBe(99);
    expect(retryDelayMs(policy, 2, undefined, () => 0.999999)).toBe(199);
    expect(retryDelayMs(policy, 4, undefined, () => 0.999999)).toBe(799);
  });

  it('spreads over the whole range (full jitter), not around its middle', () => {
    const random = seeded(7);
    const waits = Array.from({ length: 2_000 }, () => retryDelayMs(policy, 3, undefined, random));
    expect(Math.min(...waits)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...waits)).toBeLessThan(400);
    // A quarter of the draws in each quarter of [0, 400): a 0.5–1.5× spread would leave the first empty.
    for (let q = 0; q < 4; q++) {
      const share = waits.filter((w) => w >= q * 100 && w < (q + 1) * 100).length / waits.length;
      expect(share).toBeGreaterThan(0.2);
      expect(share).toBeLessThan(0.3);
    }
  });

  it('never waits longer than the cap, however many attempts (and never overflows)', () => {
    for (const attempt of [5, 10, 40, 1_000])
      expect(retryDelayMs(policy, attempt, undefined, () => 0.999999)).toBeLessThanOrEqual(1_000);
    expect(retryDelayMs(policy, 1_000, undefined, () => 0.5)).toBe(500);
  });

  it('honours Retry-After as a floor, even above the cap', () => {
    expect(retryDelayMs(policy, 1, 3_000, () => 0.999999)).toBe(3_000);
    expect(retryDelayMs(policy, 1, 30, () => 0.9)).toBe(90);
    expect(retryDelayMs(policy, 20, 60_000, () => 0)).toBe(60_000);
  });

  it('delay resolves after its time, and rejects with a catalogue error at once when aborted', async () => {
    const t0 = Date.now();
    await delay(30);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(25);

    const ac = new AbortController();
    const started = Date.now();
    const p = delay(60_000, ac.signal);
    setTimeout(() => ac.abort(new Error('worker stopping')), 20);
    const err = await caught(p);
    expect(err.code).toBe('aborted');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/worker stopping/);
    expect(Date.now() - started).toBeLessThan(5_000);
    // An already aborted signal: no wait at all.
    expect((await caught(delay(60_000, ac.signal))).code).toBe('aborted');
  });

  it('withRetries retries retryable errors after the policy’s waits, and gives up after `tries`', async () => {
    const waits: number[] = [];
    let calls = 0;
    const value = await withRetries(
      async () => {
        if (++calls < 3) throw new AmpError('vendor_unavailable', 'Amplitude answered 503');
        return 'ok';
      },
      { backoff: policy, tries: 5, random: () => 0.5, onRetry: (_e, _a, w) => waits.push(w) },
    );
    expect(value).toBe('ok');
    expect(calls).toBe(3);
    expect(waits).toEqual([50, 100]);

    calls = 0;
    const err = await caught(
      withRetries(
        async () => {
          calls++;
          throw new AmpError('network', 'ECONNRESET');
        },
        { backoff: { baseMs: 1, capMs: 1 }, tries: 4 },
      ),
    );
    expect(err.code).toBe('network');
    expect(calls).toBe(4);
  });

  it('withRetries never retries a terminal error, and waits at least a Retry-After', async () => {
    let calls = 0;
    const err = await caught(
      withRetries(
        async () => {
          calls++;
          throw new AmpError('vendor_auth', 'Amplitude answered 401');
        },
        { backoff: policy, tries: 5 },
      ),
    );
    expect(err.code).toBe('vendor_auth');
    expect(calls).toBe(1);

    const waits: number[] = [];
    calls = 0;
    await withRetries(
      async () => {
        if (++calls === 1) throw new AmpError('rate_limited', '429', { retryAfterMs: 250 });
      },
      { backoff: policy, tries: 2, random: () => 0, onRetry: (_e, _a, w) => waits.push(w) },
    );
    expect(waits).toEqual([250]);
  });

  it('withRetries stops retrying when its signal aborts mid-wait', async () => {
    const ac = new AbortController();
    let calls = 0;
    const p = withRetries(
      async () => {
        calls++;
        throw new AmpError('timeout', 'headers timeout');
      },
      { backoff: { baseMs: 60_000, capMs: 60_000 }, tries: 10, signal: ac.signal, random: () => 0.5 },
    );
    setTimeout(() => ac.abort(), 20);
    expect((await caught(p)).code).toBe('aborted');
    expect(calls).toBe(1);
  });
});
