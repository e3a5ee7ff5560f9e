import { log } from '../telemetry/logger';

/**
 * Leases on claimed work: a job, the ledger rows and outbox events a pass is sending, a run
 * loading its snapshot. Short, and renewed by a heartbeat while their process works, so the
 * work of a process that died (kill -9, a lost machine) is free for any other within seconds.
 *
 * 8 s: the longest stall of delivery after a kill is about one lease (the target is 10 s). A
 * renewal every 2 s leaves 6 s for a process's event loop to be held up by one statement (a
 * SQLite diff of a 2-million-member cohort takes 2–4 s) before its lease lapses under it.
 */
export const LEASE_MS = 8_000;

/** How often a lease of `leaseMs` is renewed: four times a lease, so one slow renewal never lets it lapse. */
export function renewEveryMs(leaseMs: number): number {
  return Math.max(50, Math.floor(leaseMs / 4));
}

export interface Heartbeat {
  /** Stops renewing and waits for a renewal in flight. */
  stop(): Promise<void>;
}

/**
 * Calls `renew` every renewEveryMs(leaseMs) until stopped, one call at a time. A failed renewal
 * is logged and tried again at the next beat: the lease is only lost if it lapses meanwhile.
 */
export function keepRenewing(what: string, leaseMs: number, renew: () => Promise<unknown>): Heartbeat {
  let inFlight: Promise<unknown> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    inFlight = renew()
      .catch((e: unknown) => log.warn({ err: (e as Error).message, what }, 'lease renewal failed'))
      .finally(() => {
        busy = false;
      });
  }, renewEveryMs(leaseMs));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}
