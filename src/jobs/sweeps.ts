import { toAmpError } from '../errors';
import { log } from '../telemetry/logger';
import type { Sweep } from './port';

/** Runs each sweep every `everyMs` (never two runs of one sweep at once) until the returned stop. */
export function startSweeps(sweeps: Sweep[]): () => Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const timers = sweeps.map((s) => {
    let busy = false;
    const t = setInterval(() => {
      if (busy) return;
      busy = true;
      const p = s
        .run()
        .catch((e: unknown) => log.error({ err: toAmpError(e).message, sweep: s.name }, 'sweep failed'))
        .finally(() => {
          busy = false;
          inFlight.delete(p);
        });
      inFlight.add(p);
    }, s.everyMs);
    t.unref();
    return t;
  });
  return async () => {
    for (const t of timers) clearInterval(t);
    await Promise.all(inFlight);
  };
}
