/**
 * crash: `kill -9` of a random process (serve or a worker) at random moments while a cohort
 * syncs and churns and events stream through, each killed process started again at once.
 * Nothing may end wrong (the faults scenario's figures), delivery may stall only briefly after
 * a kill, and no run may be left `running`.
 */
import { type Dialect, sleep } from './cluster';
import {
  APP_ID,
  churn,
  deadEvents,
  eventFigures,
  pendingRows,
  planEvents,
  retryAfterViolations,
  round2,
  runs,
  sendEvents,
  startWorld,
  syncRound,
  tagMismatches,
  verbose,
  type World,
  waitUntilForwarded,
} from './world';

export interface CrashSize {
  users: number;
  kills: number;
  /** Churn of each round after the first; rounds go on until every kill is done. */
  churn: number;
  /** At least this many churn rounds. */
  rounds: number;
  events: number;
  duplicates: number;
  /** Kills come this many ms apart, at random between the two. */
  minGapMs: number;
  maxGapMs: number;
  rateLimit: number;
  workers: number;
  seed: number;
}

export const sizes: Record<'full' | 'quick', CrashSize> = {
  full: {
    users: 20_000,
    kills: 20,
    churn: 0.1,
    rounds: 3,
    events: 30_000,
    duplicates: 0.05,
    minGapMs: 1_000,
    maxGapMs: 5_000,
    rateLimit: 500,
    workers: 2,
    seed: 23,
  },
  quick: {
    users: 3_000,
    kills: 6,
    churn: 0.1,
    rounds: 2,
    events: 3_000,
    duplicates: 0.05,
    minGapMs: 1_000,
    maxGapMs: 4_000,
    rateLimit: 300,
    workers: 2,
    seed: 23,
  },
};

/** The stall target: delivery resumes within this long after a kill. */
const STALL_TARGET_S = 10;

export async function run(dialect: Dialect, size: CrashSize): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const w = await startWorld({
    dialect,
    label: 'crash',
    members: size.users,
    pool: Math.ceil(size.users * size.churn),
    rateLimit: size.rateLimit,
    workers: size.workers,
    seed: size.seed,
  });
  try {
    const plan = planEvents(size.events, size.duplicates, w.random, 'crs');
    const sending = sendEvents(w, plan, { batch: 50, senders: 4, users: w.users });
    const roundTimeout = 180_000 + size.users * 20;
    let killing = true;
    let rounds = 0;
    let failedRuns = 0;
    const syncing = (async () => {
      for (;;) {
        if (rounds > 0) churn(w, size.churn);
        failedRuns += (await syncRound(w, roundTimeout, 20)).failed;
        rounds++;
        if (!killing && rounds > size.rounds) return;
      }
    })();
    // A failure of the rounds must end the kills too (and be reported).
    let syncError: unknown;
    syncing.catch((e: unknown) => {
      syncError = e;
    });

    const stalls: number[] = [];
    const victims: Record<string, number> = {};
    for (let k = 0; k < size.kills && syncError === undefined; k++) {
      await sleep(size.minGapMs + w.random() * (size.maxGapMs - size.minGapMs));
      const victim = pickVictim(w);
      victims[victim.role] = (victims[victim.role] ?? 0) + 1;
      const delivering = (await pendingRows(w)) > 0;
      await w.cluster.kill(victim);
      const killedAt = Date.now();
      const restarted = w.cluster.restart(victim);
      if (delivering) {
        const stall = await deliveryStall(w, killedAt);
        if (stall !== undefined) stalls.push(stall);
      }
      await restarted;
    }
    killing = false;
    await syncing;
    const sent = await sending;
    await waitUntilForwarded(w, 180_000 + size.events * 5);

    const events = eventFigures(w, plan);
    const os = w.os.state.stats();
    const all = await runs(w);
    const longest = stalls.length ? Math.max(...stalls) : 0;
    const figures = {
      users: size.users,
      kills: size.kills,
      killed: victims,
      rounds,
      tag_mismatches: tagMismatches(w),
      events_sent: plan.sends.length,
      events_unique: plan.unique.size,
      events_missing: events.missing,
      events_doubled: events.doubled,
      events_unexpected: events.unexpected,
      retry_after_violations: retryAfterViolations(w),
      per_user_violations: os.perUserViolations,
      longest_stall_s: round2(longest / 1000),
      stalls_measured: stalls.length,
      runs_left_running: all.filter((r) => r.status === 'running').length,
      runs: all.length,
      failed_runs: failedRuns,
      dead_letters: await deadEvents(w),
      webhook_resent: sent.resent,
      webhook_refused: sent.refused,
      crashed_processes: w.cluster.crashed().length,
    };
    const met =
      figures.tag_mismatches === 0 &&
      figures.events_missing === 0 &&
      figures.events_doubled === 0 &&
      figures.events_unexpected === 0 &&
      figures.retry_after_violations === 0 &&
      figures.per_user_violations === 0 &&
      figures.longest_stall_s <= STALL_TARGET_S &&
      figures.runs_left_running === 0 &&
      figures.crashed_processes === 0 &&
      figures.webhook_refused === 0;
    return { ...figures, seconds: round2((Date.now() - t0) / 1000), targets_met: met };
  } finally {
    await w.close();
  }
}

/**
 * A worker three times in four (on PostgreSQL only workers sync and forward; on SQLite `serve`
 * works jobs too), else `serve` (webhooks and the admin API go down with it).
 */
function pickVictim(w: World) {
  const workers = w.cluster.members.filter((m) => m.role === 'worker');
  if (workers.length === 0 || w.random() < 0.25) return w.cluster.members.find((m) => m.role === 'serve')!;
  return workers[Math.floor(w.random() * workers.length)]!;
}

/**
 * ms from the kill until OneSignal accepted an update again; undefined when delivery finished
 * meanwhile (nothing was left to resume). Answers to requests the dead process had sent still
 * arrive for a moment after the kill, so the count is taken 300 ms in.
 */
async function deliveryStall(w: World, killedAt: number): Promise<number | undefined> {
  const accepted = () => w.os.state.stats().byApp[APP_ID]?.accepted ?? 0;
  await sleep(300);
  const base = accepted();
  const done = verbose(async () => ({ stalled_ms: Date.now() - killedAt, pending_rows: await pendingRows(w) }));
  try {
    for (;;) {
      if (accepted() > base) return Date.now() - killedAt;
      if ((await pendingRows(w)) === 0) return undefined;
      if (Date.now() - killedAt > 120_000) return Date.now() - killedAt;
      await sleep(20);
    }
  } finally {
    done();
  }
}
