/**
 * `diff`: the ledger diff of a 1,000,000-member snapshot against the previous one (1% of
 * members leave, 1% join), durable in SQLite, side by side with `LC_ALL=C sort` + `comm`
 * producing the same add and remove lists from the same two files.
 *
 * Ours (timed): stream the new snapshot file into `staging` (the path an Amplitude download
 * takes) and apply the diff to the ledger in one committed transaction. The previous snapshot
 * is already the ledger (that is the point of keeping one), loaded untimed beforehand.
 * Baseline (timed): sort both files, then comm -13 / comm -23 into two files.
 * Peak RSS is measured in a child process diffing a 2,000,000-member snapshot.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openContext } from '../src/store';
import { applyDiff } from '../src/sync/diff';
import { BufferedStagingWriter, deleteStaging } from '../src/sync/staging';

const N = 1_000_000;
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
  writeFileSync(prev, prevIds.join('\n') + '\n');
  writeFileSync(next, nextIds.join('\n') + '\n');
  return { prev, next, adds, removes };
}

async function loadFile(ctx: Awaited<ReturnType<typeof openContext>>, runId: string, file: string): Promise<number> {
  const w = new BufferedStagingWriter(ctx, runId);
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  for await (const line of rl) if (line) await w.add(line);
  await w.flush();
  return w.inserted;
}

/** One engine diff: previous snapshot into the ledger (untimed), then the timed diff. */
async function oursCase(n: number): Promise<{ ms: number; adds: number; removes: number; expected: { adds: number; removes: number } }> {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-diff-'));
  try {
    const files = writeSnapshots(dir, n);
    const ctx = await openContext({ db: `sqlite:${join(dir, 'bench.db')}`, migrate: 'auto' });
    try {
      const syncId = 'syn_bench';
      const destinationId = 'dst_bench';
      // Previous snapshot → ledger, then everything marked delivered (the steady state).
      await loadFile(ctx, 'run_prev', files.prev);
      await ctx.store.db.transaction().execute((trx) => applyDiff(trx, { syncId, destinationId, runId: 'run_prev', sourceTs: 1 }));
      await deleteStaging(ctx, 'run_prev');
      await ctx.store.db.updateTable('ledger').set({ confirmed: 1, outcome: 'delivered' }).execute();
      ctx.store.sqlite!.pragma('wal_checkpoint(TRUNCATE)');

      const t0 = performance.now();
      await loadFile(ctx, 'run_next', files.next);
      const counts = await ctx.store.db.transaction().execute((trx) => applyDiff(trx, { syncId, destinationId, runId: 'run_next', sourceTs: 2 }));
      await deleteStaging(ctx, 'run_next');
      const ms = performance.now() - t0;
      return { ms, ...counts, expected: { adds: files.adds, removes: files.removes } };
    } finally {
      await ctx.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function baselineCase(n: number): { ms: number; adds: number; removes: number } {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-comm-'));
  try {
    const files = writeSnapshots(dir, n);
    const env = { ...process.env, LC_ALL: 'C' };
    const t0 = performance.now();
    execFileSync('sort', ['-o', join(dir, 'prev.sorted'), files.prev], { env });
    execFileSync('sort', ['-o', join(dir, 'next.sorted'), files.next], { env });
    execFileSync('sh', ['-c', `comm -13 prev.sorted next.sorted > adds.txt && comm -23 prev.sorted next.sorted > removes.txt`], { env, cwd: dir });
    const ms = performance.now() - t0;
    const count = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean).length;
    return { ms, adds: count('adds.txt'), removes: count('removes.txt') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const base = baselineCase(N);
  const ours = await oursCase(N);
  if (ours.adds !== base.adds || ours.removes !== base.removes) {
    throw new Error(`diff mismatch: ours +${ours.adds}/-${ours.removes}, sort+comm +${base.adds}/-${base.removes}`);
  }
  // Peak RSS of a 2M-member diff, in a fresh process so this one's history does not count.
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [resolve(self, '../../bin/run-ts.mjs'), self, '--diff-child', '2000000'], { encoding: 'utf8' });
  let rss2m: number | null = null;
  let ms2m: number | null = null;
  try {
    const out = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}') as { maxRssMb?: number; ms?: number };
    rss2m = out.maxRssMb ?? null;
    ms2m = out.ms === undefined ? null : Math.round(out.ms);
  } catch {
    /* reported as null */
  }
  const ratio = Math.round((ours.ms / base.ms) * 100) / 100;
  return {
    bench: 'diff',
    members: N,
    adds: ours.adds,
    removes: ours.removes,
    ours_ms: Math.round(ours.ms),
    baseline_ms: Math.round(base.ms),
    baseline: 'LC_ALL=C sort + comm',
    ratio,
    target_ratio: '<= 1.5',
    peak_rss_mb_2m: rss2m,
    ours_ms_2m: ms2m,
    target_rss_mb: '<= 300',
  };
}

if (process.argv.includes('--diff-child')) {
  const n = Number(process.argv[process.argv.indexOf('--diff-child') + 1]);
  const r = await oursCase(n);
  process.stdout.write(JSON.stringify({ ms: r.ms, adds: r.adds, removes: r.removes, maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n');
  process.exit(0);
}
