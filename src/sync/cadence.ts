import { AmpError } from '../errors';

/**
 * How often a sync pulls its cohort (DESIGN §1). Every layer that names, validates, schedules or
 * budgets a cadence reads this module.
 */
export const CADENCES = ['manual', 'once', 'hourly', 'daily', 'realtime'] as const;

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

function unknownCadence(cadence: string): AmpError {
  return new AmpError('invalid_input', `unknown cadence "${cadence}"; use one of ${CADENCES.join(', ')}`);
}

/**
 * When the next scheduled pull is due after one that ran (or was due) at `fromMs`.
 * `realtime` syncs live on webhook deltas and pull once a day to reconcile; `once` and
 * `manual` have no next pull (a `once` sync's single pull is its creation-time due date).
 */
export function nextRunAt(cadence: string, fromMs: number): number | null {
  switch (cadence) {
    case 'hourly':
      return fromMs + HOUR_MS;
    case 'daily':
    case 'realtime':
      return fromMs + DAY_MS;
    case 'once':
    case 'manual':
      return null;
    default:
      throw unknownCadence(cadence);
  }
}
