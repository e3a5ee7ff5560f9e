/**
 * `records`: what the run history costs. (1) The `deliver` bench's pass (20,000 users against the
 * emulator in its own process) with run records on and off in alternating rounds: throughput
 * with records ÷ without (target ≥ 0.9). (2) Bytes per record on SQLite, table and key together
 * (the table is WITHOUT ROWID, its primary key is its only index; dbstat; target ≤ 64). (3)
 * `ampsignal runs export RUN --format csv` of a 1M-record run in its own process: seconds and
 * peak RSS (target ≤ 150 MB).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { sqliteHandleOf } from '../src/store/dialect/sqlite';
import { recording } from '../src/sync/records';
import { runSync } from '../src/sync/run';
import type { BenchDialect } from './db';
import { benchSetup, timedRound } from './deliver.bench';
import { median } from './load';

const USERS = 20_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const EXPORT_RECORDS = Number(process.env.BENCH_EXPORT_RECORDS ?? 1_000_000);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Peak RSS of the child, reported by itself at exit (a data: module preloaded with --import). */
const REPORT_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nmaxrss_kb='+process.resourceUsage().maxRSS+'\\n'))`;

function runExport(dbUrl: string, runId: string, out: string): Promise<{ seconds: number; rssMb: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [
        '--import',
        REPORT_RSS,
        join(ROOT, 'bin/ampsignal.mjs'),
        '--db',
        dbUrl,
        'runs',
        'export',
        runId,
        '--format',
        'csv',
        '--output',
        out,
      ],
      { cwd: ROOT, timeout: 600_000, maxBuffer: 1 << 20 },
      (err, _stdout, stderr) => {
        if (err) return reject(new Error(`runs export failed: ${stderr || err.message}`));
        const kb = Number(/maxrss_kb=(\d+)/.exec(stderr)?.[1] ?? Number.NaN);
        resolve({ seconds: (performance.now() - t0) / 1000, rssMb: Math.round(kb / 1024) });
      },
    );
  });
}

/** A million records for one run, written in SQL (the delivery that would write them is bench `deliver`'s). */
async function fillRun(ctx: Parameters<typeof runSync>[0], runId: string, n: number): Promise<void> {
  await ctx.store.db.insertInto('run_keys').values({ run_id: runId }).execute();
  const key = (
    await ctx.store.db.selectFrom('run_keys').select('key').where('run_id', '=', runId).executeTakeFirstOrThrow()
  ).key;
  const at = Math.floor(Date.now() / 1000);
  const series =
    ctx.store.engine.name === 'sqlite'
      ? sql`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${n - 1}) SELECT i FROM s`
      : sql`SELECT generate_series(0, ${n - 1}) AS i`;
  await sql`INSERT INTO run_records (run_key, external_id, seq, code, status, attempts, at, message_id)
    SELECT ${key}, 'user_' || i, 0, CASE WHEN i % 20 = 0 THEN 4 ELSE 2 END, CASE WHEN i % 20 = 0 THEN 404 ELSE 200 END, 0, ${at}, NULL
    FROM (${series}) AS g`.execute(ctx.store.db);
}

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const loadStart = Math.round(loadavg()[0]! * 10) / 10;
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  const b = await benchSetup({
    dialect,
    label: 'records',
    users,
    emulator: { rateLimit: 0, perUserLimit: 0 },
    rate: 100_000,
  });
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-export-'));
  try {
    const sync = await b.addCohort(users);
    const first = await runSync(b.ctx, sync.id, { deliver: 'enqueue' });
    const on: number[] = [];
    const off: number[] = [];
    // Rounds alternate (off, on, off, on, …) so machine noise hits both alike; medians.
    for (let round = 0; round < 2 * ROUNDS; round++) {
      recording.on = round % 2 === 1;
      const r = await timedRound(b, [sync], round, USERS);
      (recording.on ? on : off).push(r.requests / r.seconds);
    }
    recording.on = true;
    const recorded = await b.ctx.store.db
      .selectFrom('run_records')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();

    let bytesPerRecord: number | undefined;
    const h = sqliteHandleOf(b.ctx.store);
    if (h) {
      const bytes = h.prepare(`SELECT SUM(pgsize) AS b FROM dbstat WHERE name = 'run_records'`).get() as { b: number };
      bytesPerRecord = Math.round((Number(bytes.b) / Number(recorded.n)) * 10) / 10;
    }

    // The export: a run of EXPORT_RECORDS records, streamed to a file by the CLI in its own process.
    const big = await runSync(b.ctx, sync.id, { dryRun: true });
    await fillRun(b.ctx, big.id, EXPORT_RECORDS);
    const out = join(dir, 'export.csv');
    const exp = await runExport(b.dbUrl, big.id, out);
    const ratio = median(on) / median(off);
    return {
      bench: 'records',
      users: USERS,
      rounds: ROUNDS,
      first_run: first.id,
      with_records_req_per_s: on.map(Math.round),
      without_records_req_per_s: off.map(Math.round),
      baseline: 'the same delivery pass with run records off, alternating rounds',
      ratio: Math.round(ratio * 100) / 100,
      target_ratio: '>= 0.9',
      ...(bytesPerRecord === undefined ? {} : { bytes_per_record: bytesPerRecord, target_bytes_per_record: '<= 64' }),
      export_records: EXPORT_RECORDS,
      export_seconds: Math.round(exp.seconds * 10) / 10,
      export_bytes: statSync(out).size,
      export_peak_rss_mb: exp.rssMb,
      target_export_peak_rss_mb: '<= 150',
      load_avg_1m: [loadStart, Math.round(loadavg()[0]! * 10) / 10],
    };
  } finally {
    recording.on = true;
    rmSync(dir, { recursive: true, force: true });
    await b.close();
  }
}
