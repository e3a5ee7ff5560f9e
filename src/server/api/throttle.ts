import { BoundedCache } from '../bounded-cache';

/**
 * Wrong admin tokens per client address: after `maxFailures` within `windowMs`, every token
 * from that address (the right one too, or guessing could go on) is refused with 429 until the
 * window ends. Addresses are what unauthenticated clients send, so they live in a bounded cache.
 */
export class FailureThrottle {
  private readonly byClient: BoundedCache<string, { failures: number; resetAt: number }>;

  constructor(
    private readonly maxFailures = 10,
    private readonly windowMs = 60_000,
    capacity = 10_000,
  ) {
    this.byClient = new BoundedCache(capacity, windowMs);
  }

  /** Milliseconds until this client may try again; 0 when it may now. */
  blockedFor(client: string, now = Date.now()): number {
    const e = this.byClient.get(client, now);
    return e && e.failures >= this.maxFailures && e.resetAt > now ? e.resetAt - now : 0;
  }

  fail(client: string, now = Date.now()): void {
    const e = this.byClient.get(client, now);
    if (!e || e.resetAt <= now) this.byClient.set(client, { failures: 1, resetAt: now + this.windowMs }, now);
    else e.failures++;
  }

  succeed(client: string): void {
    this.byClient.delete(client);
  }
}

/** Whole seconds for a Retry-After header, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
