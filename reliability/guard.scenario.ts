/**
 * guard: after Amplitude fails and then serves an empty cohort, or one that lost 90% of its
 * members, the run is held and no tag is removed until a person approves; a rejected run
 * removes nothing; an approved one removes exactly the members who left.
 */
import { cliJson, type Dialect, sleep, waitFor } from './cluster';
import {
  APP_ID,
  COHORT,
  type RunRow,
  requestRun,
  round2,
  runs,
  startWorld,
  syncRound,
  tagMismatches,
  type World,
  waitForSettled,
} from './world';

export interface GuardSize {
  users: number;
  /** Upstream failures (5xx) answered before the bad snapshot. */
  failures: number;
  workers: number;
  seed: number;
}

export const sizes: Record<'full' | 'quick', GuardSize> = {
  full: { users: 10_000, failures: 3, workers: 2, seed: 5 },
  quick: { users: 1_000, failures: 3, workers: 2, seed: 5 },
};

export async function run(dialect: Dialect, size: GuardSize): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const w = await startWorld({
    dialect,
    label: 'guard',
    members: size.users,
    workers: size.workers,
    seed: size.seed,
  });
  const timeout = 120_000 + size.users * 20;
  try {
    await syncRound(w, timeout);
    const everyone = [...w.members];
    const taggedAtStart = tagged(w, everyone);

    // An empty snapshot right after the cohort API failed: held, then rejected.
    w.amp.cohorts.forceNext(503, undefined, size.failures);
    setMembers(w, []);
    const empty = await heldRun(w, timeout);
    const removedWhileHeldEmpty = taggedAtStart - tagged(w, everyone);
    await cliJson(w.db.url, ['runs', 'reject', empty.id]);
    const removedAfterReject = taggedAtStart - tagged(w, everyone);

    // The cohort is back; then it loses 90% after another failure: held, then approved.
    setMembers(w, everyone);
    await syncRound(w, timeout);
    w.amp.cohorts.forceNext(502, undefined, size.failures);
    const kept = everyone.slice(0, Math.ceil(everyone.length / 10));
    setMembers(w, kept);
    const minus90 = await heldRun(w, timeout);
    // Held for a while with every worker idle: still nothing removed.
    await sleep(2_000);
    const removedWhileHeld90 = taggedAtStart - tagged(w, everyone);
    await cliJson(w.db.url, ['runs', 'approve', minus90.id], {});
    await waitForSettled(w, timeout);
    const approved = (await runs(w)).find((r) => r.id === minus90.id)!;
    const figures = {
      users: size.users,
      upstream_failures: w.amp.stats().cohorts.faults.error,
      empty_snapshot_held: empty.status === 'held',
      minus_90_held: minus90.status === 'held',
      tags_removed_before_approval: removedWhileHeldEmpty + removedWhileHeld90,
      tags_removed_after_reject: removedAfterReject,
      approved_run_status: approved.status,
      tag_mismatches_after_approval: tagMismatches(w),
      crashed_processes: w.cluster.crashed().length,
    };
    const met =
      figures.empty_snapshot_held &&
      figures.minus_90_held &&
      figures.tags_removed_before_approval === 0 &&
      figures.tags_removed_after_reject === 0 &&
      figures.approved_run_status === 'completed' &&
      figures.tag_mismatches_after_approval === 0 &&
      figures.crashed_processes === 0;
    return { ...figures, seconds: round2((Date.now() - t0) / 1000), targets_met: met };
  } finally {
    await w.close();
  }
}

function setMembers(w: World, members: string[]): void {
  w.amp.cohorts.upsert({ id: COHORT, name: 'Reliability', members: members.map((user_id) => ({ user_id })) });
  w.members.clear();
  for (const m of members) w.members.add(m);
}

function tagged(w: World, users: string[]): number {
  let n = 0;
  for (const u of users) if (w.os.state.getUser(u, APP_ID)?.[w.tagKey] === '1') n++;
  return n;
}

/** Asks for a run and waits for it to end (held, or anything else, which the figures show). */
async function heldRun(w: World, timeoutMs: number): Promise<RunRow> {
  const before = (await runs(w)).length;
  await requestRun(w);
  return waitFor(
    async () => {
      const all = await runs(w);
      const last = all.length > before ? all[all.length - 1] : undefined;
      return last && last.status !== 'running' ? last : undefined;
    },
    'the run to end',
    timeoutMs,
    250,
  );
}
