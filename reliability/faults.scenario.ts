/**
 * faults: both emulators fail a share of requests (5xx, dropped connections, hangs, answers lost
 * after the change was applied, 429 with Retry-After) while a cohort syncs and churns and events
 * stream through. Nothing may end wrong: every user's tag equals membership, every event is in
 * Amplitude exactly once, no request lands inside a Retry-After window, no user is updated twice
 * within a second.
 */
import type { Dialect } from './cluster';
import {
  churn,
  deadEvents,
  eventFigures,
  planEvents,
  retryAfterViolations,
  retryAfterViolationsByApi,
  round2,
  sendEvents,
  startWorld,
  syncRound,
  tagMismatches,
  waitUntilForwarded,
} from './world';

export interface FaultsSize {
  users: number;
  /** Churn rounds after the first full sync, each changing `churn` of the members. */
  rounds: number;
  churn: number;
  events: number;
  duplicates: number;
  faultRate: number;
  throttleRate: number;
  hangMs: number;
  rateLimit: number;
  workers: number;
  seed: number;
}

export const sizes: Record<'full' | 'quick', FaultsSize> = {
  full: {
    users: 50_000,
    rounds: 3,
    churn: 0.05,
    events: 100_000,
    duplicates: 0.05,
    faultRate: 0.2,
    throttleRate: 0.002,
    hangMs: 3_000,
    rateLimit: 1_000,
    workers: 2,
    seed: 11,
  },
  quick: {
    users: 3_000,
    rounds: 3,
    churn: 0.05,
    events: 5_000,
    duplicates: 0.05,
    faultRate: 0.2,
    throttleRate: 0.002,
    hangMs: 1_000,
    rateLimit: 1_000,
    workers: 2,
    seed: 11,
  },
};

export async function run(dialect: Dialect, size: FaultsSize): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const w = await startWorld({
    dialect,
    label: 'faults',
    members: size.users,
    pool: Math.ceil(size.users * size.churn * size.rounds),
    faultRate: size.faultRate,
    throttleRate: size.throttleRate,
    hangMs: size.hangMs,
    rateLimit: size.rateLimit,
    workers: size.workers,
    seed: size.seed,
  });
  try {
    const plan = planEvents(size.events, size.duplicates, w.random, 'flt');
    const sending = sendEvents(w, plan, { batch: 50, senders: 4, users: w.users });
    // Generous: a round's time grows with the cohort and the machine's load.
    const roundTimeout = 120_000 + size.users * 20;
    let failedRuns = 0;
    let runs = 0;
    for (let round = 0; round <= size.rounds; round++) {
      if (round > 0) churn(w, size.churn);
      const r = await syncRound(w, roundTimeout);
      failedRuns += r.failed;
      runs += r.runs;
    }
    const sent = await sending;
    await waitUntilForwarded(w, 120_000 + size.events * 5);
    const events = eventFigures(w, plan);
    const os = w.os.state.stats();
    const amp = w.amp.stats();
    const figures = {
      users: size.users,
      rounds: size.rounds,
      fault_rate: size.faultRate,
      throttle_rate: size.throttleRate,
      tag_mismatches: tagMismatches(w),
      events_sent: plan.sends.length,
      events_unique: plan.unique.size,
      events_missing: events.missing,
      events_doubled: events.doubled,
      events_unexpected: events.unexpected,
      retry_after_violations: retryAfterViolations(w),
      retry_after_violations_by_api: retryAfterViolationsByApi(w),
      per_user_violations: os.perUserViolations,
      crashed_processes: w.cluster.crashed().length,
      runs,
      failed_runs: failedRuns,
      dead_letters: await deadEvents(w),
      webhook_requests: sent.requests,
      webhook_resent: sent.resent,
      webhook_refused: sent.refused,
      faults_onesignal: {
        error: os.faulted,
        drop: os.dropped,
        timeout: os.timedOut,
        lost: os.lost,
        throttle: os.throttled,
      },
      faults_amplitude_cohorts: amp.cohorts.faults,
      faults_amplitude_events: amp.events.faults,
      amplitude_duplicates_absorbed: amp.events.duplicates,
    };
    const met =
      figures.tag_mismatches === 0 &&
      figures.events_missing === 0 &&
      figures.events_doubled === 0 &&
      figures.events_unexpected === 0 &&
      figures.retry_after_violations === 0 &&
      figures.per_user_violations === 0 &&
      figures.crashed_processes === 0 &&
      figures.webhook_refused === 0;
    return { ...figures, seconds: round2((Date.now() - t0) / 1000), targets_met: met };
  } finally {
    await w.close();
  }
}
