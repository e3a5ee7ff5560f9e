import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';

/**
 * Fault injection shared by both emulators, for reliability tests: what a bad network and a
 * struggling vendor do to a client.
 *
 * - `error`: a 5xx answer; nothing applied.
 * - `drop`: the connection is closed without an answer; nothing applied.
 * - `timeout`: no answer until the client gives up (or `hangMs` passes); nothing applied.
 * - `lost`: the request is applied, then the connection is closed without an answer (the case
 *   where a client cannot know its change landed).
 * - `throttle`: 429 with `Retry-After: retryAfterSeconds`, announcing a window the client must
 *   keep out of; requests arriving inside it are counted (`RetryAfterWindows`).
 */
export const FAULT_KINDS = ['error', 'drop', 'timeout', 'lost', 'throttle'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

const share = z.number().min(0).max(1);

/** The fault-mix settings both emulators accept (on top of their own errorRate/dropRate/latencyMs). */
export const faultMixShape = {
  /** Share of requests given one of the five faults, split evenly between them. */
  faultRate: share.optional(),
  /** Share of requests that hang past the client's timeout. */
  timeoutRate: share.optional(),
  /** Share of requests applied, then answered by a dropped connection. */
  lostRate: share.optional(),
  /** Share of requests answered 429 with Retry-After. */
  throttleRate: share.optional(),
  /** How long a `timeout` fault holds a request before closing it (the client usually gives up first). */
  hangMs: z.number().int().min(0).max(600_000).optional(),
  /** The Retry-After (seconds) of an injected 429. */
  retryAfterSeconds: z.number().int().min(1).max(3600).optional(),
};

export interface FaultMix {
  errorRate?: number | undefined;
  dropRate?: number | undefined;
  faultRate?: number | undefined;
  timeoutRate?: number | undefined;
  lostRate?: number | undefined;
  throttleRate?: number | undefined;
}

export const DEFAULT_HANG_MS = 120_000;
export const DEFAULT_RETRY_AFTER_SECONDS = 2;

/** One roll of the dice: the fault for this request, or undefined. Shares add up (capped at 1). */
export function rollFault(mix: FaultMix, random: () => number): FaultKind | undefined {
  const even = (mix.faultRate ?? 0) / FAULT_KINDS.length;
  const shares: Record<FaultKind, number> = {
    error: (mix.errorRate ?? 0) + even,
    drop: (mix.dropRate ?? 0) + even,
    timeout: (mix.timeoutRate ?? 0) + even,
    lost: (mix.lostRate ?? 0) + even,
    throttle: (mix.throttleRate ?? 0) + even,
  };
  const total = FAULT_KINDS.reduce((n, k) => n + shares[k], 0);
  if (total <= 0) return undefined;
  let u = random();
  if (u >= Math.min(1, total)) return undefined;
  // Past a total of 1, every request faults, in proportion.
  if (total > 1) u *= total;
  for (const k of FAULT_KINDS) {
    if (u < shares[k]) return k;
    u -= shares[k];
  }
  return undefined;
}

export function emptyFaultCounts(): Record<FaultKind, number> {
  return { error: 0, drop: 0, timeout: 0, lost: 0, throttle: 0 };
}

/** Closes the connection without an answer. */
export function dropConnection(req: FastifyRequest, reply: FastifyReply): void {
  void reply.hijack();
  req.raw.socket.destroy();
}

/**
 * Holds the request unanswered until the client closes the connection (its timeout) or `hangMs`
 * passes, then closes it. Resolves when the connection is gone.
 */
export function hangConnection(req: FastifyRequest, reply: FastifyReply, hangMs: number): Promise<void> {
  void reply.hijack();
  const socket = req.raw.socket;
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('close', done);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, hangMs);
    socket.once('close', done);
  });
}

/**
 * "Answers lost after the change was applied": the route runs and applies its change as usual;
 * a reply marked here has its connection closed instead of being answered.
 */
export class LostAnswers {
  private readonly marked = new WeakSet<FastifyReply>();

  mark(reply: FastifyReply): void {
    this.marked.add(reply);
  }

  /** Adds the hook to `app` (or a plugin scope); call once per scope that marks replies. */
  install(app: FastifyInstance): void {
    app.addHook('onSend', async (req, reply, payload) => {
      if (this.marked.has(reply)) req.raw.socket.destroy();
      return payload;
    });
  }
}

/**
 * Retry-After windows the emulator has announced, by scope (an app, a user, a project), and the
 * requests that arrived inside one anyway: a well-behaved client sends nothing to a scope until
 * its announced Retry-After has passed.
 *
 * Only requests sent after the client read the 429 count, and a vendor cannot see when a request
 * was sent, only when it arrived: a concurrent client has requests in flight when a 429 is
 * answered, and those arrive inside the window through no fault of its own, later the busier
 * either side is (measured on the loaded 2-core machine: a request sent 146 ms before the 429 was
 * written reached the emulator's handler 556 ms into the window, and the client read the 429
 * 418 ms after it was written, so no arrival-time allowance tells the two apart). What does tell:
 * a connection carries one request at a time, so a request arriving on a connection that carried
 * an answer written since the window opened was sent after that answer was read, and answers are
 * read in the order they are written. Such a request counts. The first request of a window on a
 * connection idle since before it (or a new one) does not: at most one per connection per window
 * escapes, so a client that ignores Retry-After is still counted from its second request on each
 * connection (test/emulators/faults.test.ts).
 * `install` adds the hook that records answers.
 */
export class RetryAfterWindows {
  private readonly until = new Map<string, { end: number; opened: number }>();
  /** Per connection: the order number of the last answer written on it. */
  private readonly answered = new WeakMap<object, number>();
  private order = 0;
  private announced = 0;
  violations = 0;

  /** Records the answers connections carry; once per fastify scope whose routes call `arrived`. */
  install(app: FastifyInstance): void {
    // onSend runs before the answer is written, so before the client can have read it ('finish'
    // may come after the client's next request has arrived).
    app.addHook('onSend', (req, _reply, payload, done) => {
      this.answered.set(req.raw.socket, ++this.order);
      done(null, payload);
    });
  }

  /** Records a 429 with `Retry-After: seconds` for `scope`, answered at `now`. */
  announce(scope: string, seconds: number, now = Date.now()): void {
    const end = now + seconds * 1000;
    const open = this.until.get(scope);
    if (!open || open.end <= now) this.until.set(scope, { end, opened: ++this.order });
    else if (open.end < end) open.end = end;
    // Per-user scopes of a large sync would pile up: forget closed windows now and then.
    if (this.until.size > 10_000 && ++this.announced % 1000 === 0) {
      for (const [s, w] of this.until) if (w.end <= now) this.until.delete(s);
    }
  }

  /** Whether any window may still be open (cheap; lets callers skip work when none was announced). */
  open(now = Date.now()): boolean {
    if (this.until.size === 0) return false;
    for (const [s, w] of this.until) {
      if (w.end > now) return true;
      this.until.delete(s);
    }
    return false;
  }

  /**
   * Counts (once) a request arriving for any of `scopes` while one of their windows is open, on a
   * connection that carried an answer written since the window opened (see the class).
   */
  arrived(scopes: string[], connection: object, now = Date.now()): boolean {
    const heard = this.answered.get(connection) ?? 0;
    let inside = false;
    for (const s of scopes) {
      const w = this.until.get(s);
      if (w === undefined) continue;
      if (w.end <= now) this.until.delete(s);
      else if (heard > w.opened) inside = true;
    }
    if (inside) this.violations++;
    return inside;
  }

  clear(): void {
    this.until.clear();
    this.violations = 0;
  }
}
