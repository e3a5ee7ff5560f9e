import { RATE_WINDOW_MS } from './constants';

/**
 * Timestamps of accepted requests within the last RATE_WINDOW_MS, as a queue over a growable
 * array (push at the tail, evict from the head): amortised O(1) per request, also when no limit
 * applies, because the largest window count is a statistic tests assert on.
 */
export class RollingWindow {
  private times: number[] = [];
  private head = 0;
  /** Largest number of accepted entries seen in any rolling window. */
  maxInWindow = 0;

  private evict(now: number): void {
    const cutoff = now - RATE_WINDOW_MS;
    const t = this.times;
    while (this.head < t.length && t[this.head]! <= cutoff) this.head++;
    // Compact once the dead prefix dominates, keeping the array from growing without bound.
    if (this.head > 1024 && this.head * 2 > t.length) {
      this.times = t.slice(this.head);
      this.head = 0;
    }
  }

  count(now: number): number {
    this.evict(now);
    return this.times.length - this.head;
  }

  /** 0 when one more request fits under `limit` (0 = no limit), else ms until a slot frees up. */
  wait(now: number, limit: number): number {
    if (limit <= 0) return 0;
    const n = this.count(now);
    if (n < limit) return 0;
    const oldest = this.times[this.times.length - limit]!;
    return Math.max(1, oldest + RATE_WINDOW_MS - now);
  }

  /** Records an accepted request (call after every limiter involved has agreed). */
  record(now: number): void {
    const n = this.count(now) + 1;
    this.times.push(now);
    if (n > this.maxInWindow) this.maxInWindow = n;
  }

  clear(): void {
    this.times = [];
    this.head = 0;
    this.maxInWindow = 0;
  }
}

/**
 * Per-key (per user) rolling windows. Two generations of maps rotated every window length: a key
 * untouched for a full generation can only hold timestamps outside the window, so dropping the
 * old generation forgets nothing that matters and memory stays bounded by recent traffic.
 */
export class KeyedWindows {
  private current = new Map<string, number[]>();
  private previous = new Map<string, number[]>();
  private rotatedAt = -Infinity;

  /** Returns 0 when admitted, else the milliseconds until the key may send again. */
  tryAcquire(key: string, now: number, limit: number): number {
    if (limit <= 0) return 0;
    if (now - this.rotatedAt >= RATE_WINDOW_MS) {
      this.previous = this.current;
      this.current = new Map();
      this.rotatedAt = now;
    }
    let times = this.current.get(key);
    if (!times) {
      times = this.previous.get(key) ?? [];
      this.current.set(key, times);
    }
    const cutoff = now - RATE_WINDOW_MS;
    while (times.length > 0 && times[0]! <= cutoff) times.shift();
    if (times.length >= limit) return Math.max(1, times[times.length - limit]! + RATE_WINDOW_MS - now);
    times.push(now);
    return 0;
  }

  clear(): void {
    this.current.clear();
    this.previous.clear();
    this.rotatedAt = -Infinity;
  }
}
