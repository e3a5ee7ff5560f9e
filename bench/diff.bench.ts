/**
 * `diff`: the ledger diff of a 1,000,000-member snapshot against the previous one (1% of
 * members leave, 1% join), durable in the database, side by side with `LC_ALL=C sort` + `comm`
 * producing the same add and remove lists from the same two files.
 *
 * Ours (timed): stream the new snapshot file through the engine's staging writer (the path an
 * Amplitude download takes; a TEMP table on SQLite, an unlogged table of the run's on PostgreSQL, see
 * src/sync/staging.ts), apply the diff to the ledger in one committed transaction (WAL
 * autocheckpoint left on) and drop the snapshot. The previous snapshot is already the ledger
 * (that is the point of keeping one), loaded untimed beforehand and settled (db.ts).
 * Baseline (timed): sort both files, then comm -13 / comm -23 into two files: the floor, keeping no
 * state and making nothing durable.
 * Peer (timed): the `sqlite3` command-line shell doing the same job durably: into a WAL-mode
 * database file (synchronous=NORMAL and a 32 MB page cache, as ours) it loads the new snapshot and the previous ledger
 * (both as files) and writes both EXCEPTs into a persisted table in one committed transaction. A
 * second figure gives the peer the previous ledger already loaded, as ours has it.
 * Three rounds alternate the sides; the median ratio is the figure.
 * Peak RSS is measured in a child process diffing a 2,000,000-member snapshot: our process's,
 * PostgreSQL's server processes apart.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RawBuilder, sql } from 'kysely';
import { type Context, openContext } from '../src/store';
import { importCohortFile } from '../src/sync/cohorts';
import { applyDiff, diffTransaction } from '../src/sync/diff';
import {
  deleteStaging,
  fileSnapshotSource,
  type SnapshotRef,
  type StagedAt,
  snapshotWriter,
  stagedIds,
} from '../src/sync/staging';
import { AS_WORKER, type BenchDialect, freshDatabase, settle } from './db';

const N = Number(process.env.BENCH_DIFF_MEMBERS ?? 1_000_000);
const CHURN = 0.01;

function writeSnapshots(dir: string, n: number): { prev: string; next: string; adds: number; removes: number } {
  const prevIds: string[] = [];
  const nextIds: string[] = [];
  let adds = 0;
  let removes = 0;
  const every = Math.round(1 / CHURN);
  for (let i = 0; i < n; i++) {
    const id = `user_${(i * 7919) % n}`; // not in sorted order, like a real export
    prevIds.push(id);
    if (i % every === 3) removes++;
    else nextIds.push(id);
  }
  for (let i = 0; i < n * CHURN; i++) {
    nextIds.push(`new_${i}`);
    adds++;
  }
  const prev = join(dir, 'prev.txt');
  const next = join(dir, 'next.txt');
  writeFileSync(prev, `${prevIds.join('\n')}\n`);
  writeFileSync(next, `${nextIds.join('\n')}\n`);
  return { prev, next, adds, removes };
}

/**
 * Streams a file of ids into the writer: 1 MB chunks split on newlines, awaiting only when the
 * writer writes a batch (readline's `for await` per line cost ~0.5 s per million lines).
 */
async function loadFile(ctx: Context, runId: string, file: string): Promise<StagedAt> {
  const w = snapshotWriter(ctx, runId);
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const id = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (id) {
        const p = w.add(id);
        if (p) await p;
      }
    }
  }
  if (rest) await w.add(rest);
  await w.finish();
  return w.stagedAt;
}

/** The previous snapshot as the ledger in its steady state: every member delivered (untimed). */
async function seedDelivered(ctx: Context, syncId: string, ids: RawBuilder<unknown>): Promise<void> {
  await sql`INSERT INTO ledger (sync_id, destination_id, external_id, desired, confirmed, source_ts, run_id, outcome, error,
    attempts, next_attempt_at, lease_owner, lease_until, updated_at)
    SELECT ${syncId}, 'dst_bench', external_id, 1, 1, 1, 'run_prev', 'delivered', NULL, 0, NULL, NULL, NULL, 0
    FROM (${ids}) AS s`.execute(ctx.store.db);
}

/** A fresh database for one case, dropped after `fn`. */
async function withDatabase<T>(dialect: BenchDialect, fn: (ctx: Context) => Promise<T>): Promise<T> {
  const database = await freshDatabase(dialect, 'diff');
  try {
    const ctx = await openContext({ db: database.url, migrate: 'auto', ...AS_WORKER });
    try {
      return await fn(ctx);
    } finally {
      await ctx.close();
    }
  } finally {
    await database.drop();
  }
}

/** One engine diff: previous snapshot into the ledger (untimed), then the timed diff. */
function oursCase(
  dialect: BenchDialect,
  files: { prev: string; next: string },
): Promise<{ ms: number; loadMs: number; applyMs: number; commitMs: number; adds: number; removes: number }> {
  return withDatabase(dialect, async (ctx) => {
    const syncId = 'syn_bench';
    const destinationId = 'dst_bench';
    const prevAt = await loadFile(ctx, 'run_prev', files.prev);
    await seedDelivered(ctx, syncId, stagedIds({ runId: 'run_prev', stagedAt: prevAt }));
    await deleteStaging(ctx, 'run_prev');
    await settle(ctx, ['ledger', 'staging']);

    const t0 = performance.now();
    const stagedAt = await loadFile(ctx, 'run_next', files.next);
    const loadMs = performance.now() - t0;
    let appliedAt = 0;
    const counts = await diffTransaction(ctx, async (trx) => {
      const c = await applyDiff(trx, { syncId, destinationId, runId: 'run_next', sourceTs: 2, stagedAt });
      appliedAt = performance.now();
      return c;
    });
    const committedAt = performance.now();
    await deleteStaging(ctx, 'run_next');
    const ms = performance.now() - t0;
    // The commit writes every ledger page the 1% churn touched (removes are spread over the whole
    // key range) into the WAL: the price of "durable", reported apart from the diff itself.
    return { ms, loadMs, applyMs: appliedAt - t0 - loadMs, commitMs: committedAt - appliedAt, ...counts };
  });
}

/**
 * The same diff for a file-imported cohort: `cohort import` of each file (timed apart: it is its
 * own command), then the run's diff and commit, with the previous import already in the ledger.
 * The run reads the members where the engine's run does (src/sync/run.ts stageSnapshot): in place
 * on SQLite, copied into the run's own table on PostgreSQL (timed: the run pays for it).
 */
function importedCase(
  dialect: BenchDialect,
  files: { prev: string; next: string },
): Promise<{ importMs: number; diffMs: number; adds: number; removes: number }> {
  return withDatabase(dialect, async (ctx) => {
    const syncId = 'syn_bench';
    const cohortId = 'coh_bench';
    await importCohortFile(ctx, { file: files.prev, name: 'bench', id: cohortId });
    await seedDelivered(ctx, syncId, stagedIds({ runId: 'run_prev', stagedAt: 'cohort', cohortId }));
    await settle(ctx, ['ledger', 'cohort_members']);
    let t0 = performance.now();
    await importCohortFile(ctx, { file: files.next, name: 'bench', id: cohortId });
    const importMs = performance.now() - t0;
    await settle(ctx, ['ledger', 'cohort_members']);
    t0 = performance.now();
    let ref: SnapshotRef = { runId: 'run_next', stagedAt: 'cohort', cohortId };
    if (!ctx.store.engine.can.inPlaceSnapshot) {
      const writer = snapshotWriter(ctx, 'run_next');
      await fileSnapshotSource(cohortId).load(ctx, 'run_next', writer);
      await writer.finish();
      ref = { runId: 'run_next', stagedAt: writer.stagedAt };
    }
    const counts = await diffTransaction(ctx, (trx) =>
      applyDiff(trx, { syncId, destinationId: 'dst_bench', sourceTs: 2, ...ref }),
    );
    return { importMs, diffMs: performance.now() - t0, ...counts };
  });
}

function baselineCase(files: { dir: string; prev: string; next: string }): {
  ms: number;
  adds: number;
  removes: number;
} {
  const dir = files.dir;
  {
    const env = { ...process.env, LC_ALL: 'C' };
    const t0 = performance.now();
    execFileSync('sort', ['-o', join(dir, 'prev.sorted'), files.prev], { env });
    execFileSync('sort', ['-o', join(dir, 'next.sorted'), files.next], { env });
    execFileSync(
      'sh',
      ['-c', `comm -13 prev.sorted next.sorted > adds.txt && comm -23 prev.sorted next.sorted > removes.txt`],
      { env, cwd: dir },
    );
    const ms = performance.now() - t0;
    const count = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length;
    return { ms, adds: count('adds.txt'), removes: count('removes.txt') };
  }
}

/** The sqlite3 shell, installed from Debian's package when missing (as .ci/run does). */
function ensureSqlite3(): void {
  if (spawnSync('sqlite3', ['-version']).status === 0) return;
  const install = spawnSync(
    'sh',
    ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sqlite3'],
    {
      stdio: 'ignore',
    },
  );
  if (install.status !== 0 || spawnSync('sqlite3', ['-version']).status !== 0)
    throw new Error('the sqlite3 command-line shell is missing and could not be installed (apt-get install sqlite3)');
}

function sqlite3(db: string, script: string): string {
  const r = spawnSync('sqlite3', ['-batch', '-bail', db], { input: script, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sqlite3 failed: ${r.stderr.trim()}`);
  return r.stdout;
}

const LOAD_LEDGER = `CREATE TABLE ledger(external_id TEXT);\n.import --csv __PREV__ ledger\n`;

/**
 * The durable peer: the sqlite3 shell diffing the same two files in a WAL-mode database file.
 * `ledgerLoaded`: the previous ledger is loaded (untimed) before the clock starts, as ours is.
 */
function peerCase(files: { dir: string; prev: string; next: string }, ledgerLoaded: boolean) {
  const db = join(files.dir, 'peer.db');
  rmSync(db, { force: true });
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
  const setup = 'PRAGMA journal_mode=WAL;\n';
  sqlite3(db, setup + (ledgerLoaded ? LOAD_LEDGER.replace('__PREV__', files.prev) : ''));
  const script = `PRAGMA synchronous=NORMAL;
PRAGMA cache_size=-32768;
${ledgerLoaded ? '' : LOAD_LEDGER.replace('__PREV__', files.prev)}CREATE TABLE snapshot(external_id TEXT);
.import --csv ${files.next} snapshot
BEGIN;
CREATE TABLE diff(op TEXT, external_id TEXT);
INSERT INTO diff SELECT 'add', external_id FROM (SELECT external_id FROM snapshot EXCEPT SELECT external_id FROM ledger);
INSERT INTO diff SELECT 'remove', external_id FROM (SELECT external_id FROM ledger EXCEPT SELECT external_id FROM snapshot);
COMMIT;
`;
  const t0 = performance.now();
  sqlite3(db, script);
  const ms = performance.now() - t0;
  const counts = new Map(
    sqlite3(db, "SELECT op || ' ' || COUNT(*) FROM diff GROUP BY op;")
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  );
  return { ms, adds: Number(counts.get('add') ?? 0), removes: Number(counts.get('remove') ?? 0) };
}

/** Rounds of (baseline, ours, imported), side by side; the median of each ratio is reported. */
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r2 = (x: number) => Math.round(x * 100) / 100;

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-diff-'));
  const files = { dir, ...writeSnapshots(dir, N) };
  // One run on a shared 2-core machine swung 2.8-3.4 for the same code; rounds alternate the
  // sides so a noisy minute hits both.
  ensureSqlite3();
  const rounds: Array<{
    base: ReturnType<typeof baselineCase>;
    peer: ReturnType<typeof peerCase>;
    peerLoaded: ReturnType<typeof peerCase>;
    ours: Awaited<ReturnType<typeof oursCase>>;
    imported: Awaited<ReturnType<typeof importedCase>>;
  }> = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const base = baselineCase(files);
      const peer = peerCase(files, false);
      const peerLoaded = peerCase(files, true);
      const ours = await oursCase(dialect, files);
      const imported = await importedCase(dialect, files);
      for (const [name, r] of [
        ['streamed', ours],
        ['imported', imported],
        ['sqlite3 peer', peer],
        ['sqlite3 peer, ledger loaded', peerLoaded],
      ] as const) {
        if (r.adds !== base.adds || r.removes !== base.removes) {
          throw new Error(
            `diff mismatch (${name}): +${r.adds}/-${r.removes}, sort+comm +${base.adds}/-${base.removes}`,
          );
        }
      }
      rounds.push({ base, peer, peerLoaded, ours, imported });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ratios = rounds.map((r) => r2(r.ours.ms / r.base.ms));
  const peerRatios = rounds.map((r) => r2(r.ours.ms / r.peer.ms));
  const peerLoadedRatios = rounds.map((r) => r2(r.ours.ms / r.peerLoaded.ms));
  const importedRatios = rounds.map((r) => r2(r.imported.diffMs / r.base.ms));
  // The round whose ratio is the median, for its phase timings.
  const mid = rounds[ratios.indexOf(median(ratios))]!;
  // Peak RSS of a 2M-member diff, in a fresh process so this one's history does not count.
  const self = fileURLToPath(import.meta.url);
  const dir2 = mkdtempSync(join(tmpdir(), 'ampsignal-bench-diff2m-'));
  const files2 = writeSnapshots(dir2, 2 * N);
  const child = spawnSync(
    process.execPath,
    [resolve(self, '../../bin/run-ts.mjs'), self, '--diff-child', dialect, files2.prev, files2.next],
    {
      encoding: 'utf8',
    },
  );
  rmSync(dir2, { recursive: true, force: true });
  let rss2m: number | null = null;
  let ms2m: number | null = null;
  try {
    const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { maxRssMb?: number; ms?: number };
    rss2m = out.maxRssMb ?? null;
    ms2m = out.ms === undefined ? null : Math.round(out.ms);
  } catch {
    /* reported as null */
  }
  return {
    bench: 'diff',
    members: N,
    adds: mid.ours.adds,
    removes: mid.ours.removes,
    ours_ms: Math.round(mid.ours.ms),
    ours_load_ms: Math.round(mid.ours.loadMs),
    ours_apply_ms: Math.round(mid.ours.applyMs),
    ours_commit_ms: Math.round(mid.ours.commitMs),
    baseline_ms: Math.round(mid.base.ms),
    baseline: 'LC_ALL=C sort + comm',
    // The durable peer: the sqlite3 shell loading both files and persisting both EXCEPTs (WAL).
    sqlite3_ratio: median(peerRatios),
    sqlite3_round_ratios: peerRatios,
    sqlite3_ms: Math.round(median(rounds.map((r) => r.peer.ms))),
    sqlite3_target_ratio: '<= 1.0',
    // The same peer with the previous ledger already in its database, as ours has it.
    sqlite3_ledger_loaded_ratio: median(peerLoadedRatios),
    sqlite3_ledger_loaded_ms: Math.round(median(rounds.map((r) => r.peerLoaded.ms))),
    // The floor: sort + comm keeps no state and makes nothing durable.
    ratio: median(ratios),
    round_ratios: ratios,
    target_ratio: '<= 1.5',
    // A file cohort's run diffs its imported members in place; the import is its own command.
    imported_cohort_diff_ratio: median(importedRatios),
    imported_cohort_round_ratios: importedRatios,
    imported_cohort_diff_ms: Math.round(median(rounds.map((r) => r.imported.diffMs))),
    imported_cohort_import_ms: Math.round(median(rounds.map((r) => r.imported.importMs))),
    peak_rss_mb_2m: rss2m,
    ours_ms_2m: ms2m,
    target_rss_mb: '<= 300',
  };
}

if (process.argv.includes('--diff-child')) {
  const i = process.argv.indexOf('--diff-child');
  const [dialect, prev, next] = process.argv.slice(i + 1, i + 4) as [BenchDialect, string, string];
  const r = await oursCase(dialect, { prev, next });
  process.stdout.write(
    `${JSON.stringify({
      ms: r.ms,
      adds: r.adds,
      removes: r.removes,
      maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    })}\n`,
  );
  process.exit(0);
}
