import { randomUUID } from 'node:crypto';
import { abortError, delay } from '../../errors';
import { USER_UPDATES_PER_SECOND_PER_APP, USER_UPDATES_PER_SECOND_PER_USER } from './constants';

/**
 * Pacing for one OneSignal app, shared by every destination and client on that app id in this
 * process (DESIGN §3, §6: delivery for one app runs in one job at a time, so its limit lives here).
 *
 * - A rolling-window cap counted over answers, not sends: a request counts against the window
 *   from the moment we let it go until PACING_WINDOW_MS after its answer came back. OneSignal
 *   counts a request when it arrives, in any rolling second [U: the reference gives the limit,
 *   not the window's shape; we take the strictest reading, a sliding window, as the emulator
 *   implements it], and a request arrives somewhere between our send and its answer. So if at
 *   every grant fewer than `cap` requests are in flight or answered within the last window, no
 *   vendor second can ever hold more than `cap` arrivals, however queueing (sockets, event-loop
 *   stalls on either side) bunches them: the cap can be the limit itself, with no headroom for
 *   jitter, which a window over send times would need (a send and its arrival can be apart by
 *   any queueing delay). Capacity lost to a stall of ours is used afterwards, unlike with a
 *   token bucket alone.
 * - A token bucket at 103% of the rate with a burst of 1% keeps sends smooth: catching up after
 *   a stall never dumps a large burst on the vendor (a burst spreads its own arrival times),
 *   yet the margin above the window's sustained rate makes lost capacity up within a second.
 * - At most one request per external id per rolling second, counted from the previous
 *   request's answer (two sends 1,000 ms apart can arrive closer than that; an answer cannot
 *   come back before its request arrived).
 * - A 429 pauses the whole app until Retry-After and halves the rate (AIMD); the rate grows back
 *   a little for every second without a 429.
 * - Waiters sit in a FIFO served by one timer, so thousands of concurrent acquire() calls cost
 *   no CPU while they wait.
 */

/** Requests counted in any window, as a fraction of the rate: the answer-based window needs no headroom. */
export const PACING_HEADROOM = 1;
/** The vendor's second plus clock granularity between two processes' timers. */
export const PACING_WINDOW_MS = 1_005;
/** Bucket capacity as a fraction of the rate (at least one token). */
export const BURST_FRACTION = 0.01;
/** Bucket refill rate as a fraction of the rate (the window above is what enforces the limit). */
export const BUCKET_RATE_FRACTION = 1.03;
/**
 * Spacing between the answer to one request for a user and the next request for that user: the
 * previous one arrived before its answer left, so the vendor's per-user interval is the limit and
 * the 10 ms only covers clock granularity between us and the vendor.
 */
export const PER_USER_SPACING_MS = 1_000 / USER_UPDATES_PER_SECOND_PER_USER + 10;
/** AIMD: multiplicative decrease on 429, floor, and additive increase per quiet second. */
export const DECREASE_FACTOR = 0.5;
export const MIN_RATE_PER_SECOND = 10;
export const INCREASE_FRACTION_PER_SECOND = 0.05;

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface UserSlot {
  lastSentAt: number;
  /** Resolves when the previous acquire for this user has taken its app token. */
  tail: Promise<void>;
  pending: number;
}

/**
 * What another process's limiter needs to go on where this one stopped: the wall-clock times of
 * answers still inside the app window, and the users answered within the per-user spacing.
 */
export interface PacingSnapshot {
  answers: number[];
  users: Array<[string, number]>;
  /** Wall-clock end of a Retry-After pause still running (absent in snapshots without one). */
  pausedUntil?: number;
}

export interface LimiterStats {
  appId: string;
  configuredRate: number;
  currentRate: number;
  queued: number;
  pausedUntil: number;
  trackedUsers: number;
  rateLimited: number;
}

export class AppLimiter {
  readonly appId: string;
  /** Tells this limiter's state from another process's (or a fresh one's) at a queue handoff. */
  readonly instanceId = randomUUID();
  private configuredRate: number;
  private currentRate: number;
  private tokens: number;
  private lastRefill: number;
  private pausedUntil = 0;
  private lastDecreaseAt = 0;
  private rateLimitedCount = 0;
  private readonly queue: Waiter[] = [];
  private queueHead = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly users = new Map<string, UserSlot>();
  private lastSweep = 0;
  /** Granted requests whose answer has not come back yet. */
  private inflight = 0;
  /** Ring of recent answer times (performance.now()), sized for the largest window cap. */
  private readonly settleTimes: Float64Array;
  private settles = 0;

  constructor(appId: string, ratePerSecond: number = USER_UPDATES_PER_SECOND_PER_APP) {
    this.appId = appId;
    this.configuredRate = Math.max(1, ratePerSecond);
    this.currentRate = this.configuredRate;
    this.tokens = this.capacity();
    this.lastRefill = Date.now();
    // The rate only ever goes down from here (constrain, AIMD), so this size always suffices.
    this.settleTimes = new Float64Array(this.windowCap() + 1);
  }

  /** Lowers (never raises) the configured rate: destinations sharing an app get the strictest. */
  constrain(ratePerSecond: number): void {
    const r = Math.max(1, ratePerSecond);
    if (r < this.configuredRate) {
      this.configuredRate = r;
      this.currentRate = Math.min(this.currentRate, r);
      this.tokens = Math.min(this.tokens, this.capacity());
    }
  }

  private pacedRate(): number {
    return Math.max(0.5, this.currentRate * BUCKET_RATE_FRACTION);
  }

  private capacity(): number {
    return Math.max(1, Math.floor(this.currentRate * BURST_FRACTION));
  }

  /** Most grants allowed in any rolling PACING_WINDOW_MS at the current rate. */
  private windowCap(): number {
    return Math.max(1, Math.floor(this.currentRate * PACING_HEADROOM));
  }

  /**
   * 0 when one more grant fits in the window, else ms until enough answers have left it;
   * Infinity while `cap` requests are in flight (an answer coming back wakes the queue).
   */
  private windowWait(): number {
    const room = this.windowCap() - this.inflight;
    if (room <= 0) return Infinity;
    // Fits when at most room-1 answers are inside the window: the room-th latest one is outside.
    if (this.settles < room) return 0;
    const kth = this.settleTimes[(this.settles - room) % this.settleTimes.length]!;
    const age = performance.now() - kth;
    return age >= PACING_WINDOW_MS ? 0 : PACING_WINDOW_MS - age;
  }

  private recordGrant(): void {
    this.tokens -= 1;
    this.inflight++;
  }

  /** A granted request's answer (or failure) is in: from now on it counts for one more window. */
  private settleGrant = (): void => {
    this.inflight--;
    this.settleTimes[this.settles % this.settleTimes.length] = performance.now();
    this.settles++;
    if (this.queueHead < this.queue.length && this.windowWait() === 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.pump();
    }
  };

  private refill(now: number): void {
    const elapsed = now - this.lastRefill;
    if (elapsed <= 0) return;
    this.lastRefill = now;
    // Paused: no tokens and no rate recovery (a quiet second while paused proves nothing).
    if (now < this.pausedUntil) return;
    // Additive increase only after a full second without a 429.
    if (this.currentRate < this.configuredRate && now - this.lastDecreaseAt >= 1_000) {
      this.currentRate = Math.min(
        this.configuredRate,
        this.currentRate + (this.configuredRate * INCREASE_FRACTION_PER_SECOND * elapsed) / 1_000,
      );
    }
    this.tokens = Math.min(this.capacity(), this.tokens + (elapsed * this.pacedRate()) / 1_000);
  }

  /**
   * Waits until a request for `userKey` (an external id; omit for app-level calls) may be sent.
   * Resolving means the slot is taken: send right away, then call the returned `settle` when
   * the answer (or failure) is in. A user's next request waits for that settle plus the
   * spacing: the vendor counts a request when it arrives, which can be long after we let it go
   * (queued in the connection pool on a busy host), but never after its answer came back.
   */
  async acquire(userKey?: string, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) throw abortError(signal);
    if (userKey === undefined) {
      await this.takeToken(signal);
      return once(this.settleGrant);
    }
    // At most one O(users) sweep per spacing interval, however many callers arrive.
    const now = Date.now();
    if (now - this.lastSweep >= PER_USER_SPACING_MS) this.sweep(now);
    let slot = this.users.get(userKey);
    if (!slot) {
      slot = { lastSentAt: 0, tail: Promise.resolve(), pending: 0 };
      this.users.set(userKey, slot);
    }
    const s = slot;
    const prev = s.tail;
    let release!: () => void;
    s.tail = new Promise<void>((r) => (release = r));
    s.pending++;
    try {
      await prev;
      const wait = s.lastSentAt + PER_USER_SPACING_MS - Date.now();
      if (wait > 0) await delay(wait, signal);
      await this.takeToken(signal);
    } catch (e) {
      // Nothing was sent: the next request for this user keeps the previous spacing.
      s.pending--;
      release();
      throw e;
    }
    return once(() => {
      this.settleGrant();
      s.lastSentAt = Date.now();
      s.pending--;
      release();
    });
  }

  /** A 429 arrived: stop the whole app until Retry-After passes, and halve the rate (once per burst). */
  onRateLimited(retryAfterMs: number, now = Date.now()): void {
    this.rateLimitedCount++;
    this.pausedUntil = Math.max(this.pausedUntil, now + Math.max(0, retryAfterMs));
    this.tokens = 0;
    // Many in-flight requests of one burst see the same 429 wave: halve once per second, not per answer.
    if (now - this.lastDecreaseAt >= 1_000) {
      this.currentRate = Math.max(
        Math.min(MIN_RATE_PER_SECOND, this.configuredRate),
        this.currentRate * DECREASE_FACTOR,
      );
    }
    this.lastDecreaseAt = now;
    this.schedule(now);
  }

  stats(): LimiterStats {
    return {
      appId: this.appId,
      configuredRate: this.configuredRate,
      currentRate: Math.round(this.currentRate * 100) / 100,
      queued: this.queue.length - this.queueHead,
      pausedUntil: this.pausedUntil,
      trackedUsers: this.users.size,
      rateLimited: this.rateLimitedCount,
    };
  }

  private takeToken(signal?: AbortSignal): Promise<void> {
    const now = Date.now();
    this.refill(now);
    if (
      this.queue.length === this.queueHead &&
      now >= this.pausedUntil &&
      this.tokens >= 1 &&
      this.windowWait() === 0
    ) {
      this.recordGrant();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject };
      if (signal) {
        w.signal = signal;
        w.onAbort = () => {
          const i = this.queue.indexOf(w, this.queueHead);
          if (i >= 0) this.queue.splice(i, 1);
          reject(abortError(signal));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.queue.push(w);
      this.schedule(now);
    });
  }

  private pump = (): void => {
    this.timer = undefined;
    const now = Date.now();
    this.refill(now);
    while (
      this.queueHead < this.queue.length &&
      now >= this.pausedUntil &&
      this.tokens >= 1 &&
      this.windowWait() === 0
    ) {
      const w = this.queue[this.queueHead]!;
      this.queueHead++;
      this.recordGrant();
      if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
      w.resolve();
    }
    // Compact the FIFO now and then instead of shift()ing (O(n) per call on big queues).
    if (this.queueHead > 1_024 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    this.schedule(now);
  };

  private schedule(now: number): void {
    if (this.timer || this.queueHead >= this.queue.length) return;
    let wait: number;
    if (now < this.pausedUntil) wait = this.pausedUntil - now;
    else {
      const window = this.windowWait();
      // Full of requests in flight: the next answer pumps the queue (settleGrant).
      if (window === Infinity) return;
      wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1_000) / this.pacedRate()), Math.ceil(window));
    }
    this.timer = setTimeout(this.pump, wait);
  }

  /** This limiter's windows as they stand (call once its requests are all answered). */
  snapshot(): PacingSnapshot {
    const now = performance.now();
    const wall = Date.now();
    const answers: number[] = [];
    const len = this.settleTimes.length;
    for (let i = Math.max(0, this.settles - len); i < this.settles; i++) {
      const age = now - this.settleTimes[i % len]!;
      if (age < PACING_WINDOW_MS) answers.push(Math.round(wall - age));
    }
    const users: Array<[string, number]> = [];
    for (const [k, slot] of this.users)
      if (wall - slot.lastSentAt < PER_USER_SPACING_MS) users.push([k, slot.lastSentAt]);
    // OneSignal told the app to wait: the next process to send for it must wait too.
    return this.pausedUntil > wall ? { answers, users, pausedUntil: this.pausedUntil } : { answers, users };
  }

  /**
   * Takes over another limiter's windows for this app: its recent answers count against our
   * window, its recent users keep their spacing, its Retry-After pause holds us too. Our own recent answers stay; the ring is
   * rebuilt in time order, which windowWait relies on.
   */
  restore(s: PacingSnapshot): void {
    const now = performance.now();
    const wall = Date.now();
    const times: number[] = [];
    const len = this.settleTimes.length;
    for (let i = Math.max(0, this.settles - len); i < this.settles; i++) {
      const t = this.settleTimes[i % len]!;
      if (now - t < PACING_WINDOW_MS) times.push(t);
    }
    for (const w of s.answers) if (wall - w < PACING_WINDOW_MS) times.push(now - (wall - w));
    times.sort((a, b) => a - b);
    const keep = times.slice(Math.max(0, times.length - len));
    this.settles = 0;
    for (const t of keep) this.settleTimes[this.settles++ % len] = t;
    for (const [user, at] of s.users) {
      const slot = this.users.get(user);
      if (slot) slot.lastSentAt = Math.max(slot.lastSentAt, at);
      else this.users.set(user, { lastSentAt: at, tail: Promise.resolve(), pending: 0 });
    }
    if (s.pausedUntil !== undefined && s.pausedUntil > this.pausedUntil) {
      this.pausedUntil = s.pausedUntil;
      this.tokens = 0;
    }
  }

  /** Forgets users whose last send is older than the spacing and who have nobody waiting. */
  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, s] of this.users) {
      if (s.pending === 0 && now - s.lastSentAt >= PER_USER_SPACING_MS) this.users.delete(k);
    }
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}

const registry = new Map<string, AppLimiter>();

/** The process-wide limiter of one OneSignal app (shared by all destinations on that app). */
export function limiterForApp(appId: string, ratePerSecond: number = USER_UPDATES_PER_SECOND_PER_APP): AppLimiter {
  let l = registry.get(appId);
  if (!l) {
    l = new AppLimiter(appId, ratePerSecond);
    registry.set(appId, l);
  } else {
    l.constrain(ratePerSecond);
  }
  return l;
}
