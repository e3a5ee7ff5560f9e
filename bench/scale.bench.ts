/**
 * scale: delivery throughput (ledger rows confirmed per second) with 1, 2 and 4 `ampsignal
 * worker` processes on PostgreSQL, 8 OneSignal apps (one sync each) on the emulator with its
 * limits out of the way. ratio = 4-process rows/s ÷ 1-process rows/s, measured side by side in
 * this run (the 2-process figure is reported too). PostgreSQL only: on SQLite one process works
 * every job (there is no `worker` to add).
 * On a small machine the emulator, PostgreSQL and the workers share the same cores, so the
 * ratio shows how far the queue design lets throughput grow there, not a cluster's ceiling.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { addDestination } from '../src/app/destinations';
import { startOneSignalEmulator } from '../src/emulators/onesignal';
import { createJobQueue } from '../src/jobs';
import { openContext } from '../src/store';
import { importCohortFile } from '../src/sync/cohorts';
import { createSync } from '../src/sync/syncs';
import { type BenchDialect, freshDatabase } from './db';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, '../bin/ampsignal.mjs');
const APPS = 8;
const USERS = Number(process.env.BENCH_SCALE_USERS ?? 1500);
export const databases: readonly BenchDialect[] = ['postgres'];
export const why = 'scale-out is PostgreSQL only: on SQLite one process works every job';

const appId = (a: number) => `00000000-0000-4000-8000-0000000000${String(a).padStart(2, '0')}`;

function startWorker(url: string): { child: ChildProcess; started: Promise<void> } {
  const child = spawn(process.execPath, [BIN, '--db', url, 'worker', '--concurrency', '4', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const started = new Promise<void>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('"started"')) res();
    });
    child.on('exit', (code) => rej(new Error(`worker exited with ${code} before starting`)));
  });
  return { child, started };
}

async function measure(
  processes: number,
  emuUrl: string,
  dir: string,
): Promise<{ rows: number; seconds: number; rowsPerSecond: number }> {
  const database = await freshDatabase('postgres', `scale_p${processes}`);
  const url = database.url;
  const ctx = await openContext({ db: url, migrate: 'auto' }).catch(async (e) => {
    await database.drop();
    throw e;
  });
  const workers: Array<ReturnType<typeof startWorker>> = [];
  const jobs = createJobQueue(ctx);
  try {
    const syncIds: string[] = [];
    for (let a = 0; a < APPS; a++) {
      const dest = await addDestination(ctx, {
        name: `bench app ${a}`,
        app_id: appId(a),
        api_key: `key-${a}`,
        api_url: emuUrl,
        rate_limit_per_second: 100_000,
      });
      const imp = await importCohortFile(ctx, { file: join(dir, 'users.csv'), name: `bench cohort ${a}` });
      syncIds.push((await createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id, cadence: 'manual' })).id);
    }
    for (let i = 0; i < processes; i++) workers.push(startWorker(url));
    await Promise.all(workers.map((w) => w.started));

    const t0 = performance.now();
    for (const id of syncIds)
      await jobs.add('sync.run', { syncId: id, trigger: 'manual' }, { jobKey: `sync.run:${id}` });
    const db = ctx.store.db;
    const deadline = Date.now() + 10 * 60_000;
    for (;;) {
      const r = await sql<{ runs: number; open: number; pending: number }>`
        SELECT (SELECT COUNT(*) FROM runs) AS runs,
               (SELECT COUNT(*) FROM runs WHERE status = 'running') AS open,
               (SELECT COUNT(*) FROM ledger WHERE desired <> confirmed AND (outcome IS NULL OR outcome = 'retry')) AS pending`.execute(
        db,
      );
      const row = r.rows[0]!;
      if (Number(row.runs) === APPS && Number(row.open) === 0 && Number(row.pending) === 0) break;
      if (Date.now() > deadline) throw new Error(`scale bench (${processes} processes) did not finish in 10 minutes`);
      await new Promise((res) => setTimeout(res, 50)); // polling the database for completion
    }
    const seconds = (performance.now() - t0) / 1000;
    const delivered = await db
      .selectFrom('ledger')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('confirmed', '=', 1)
      .executeTakeFirstOrThrow();
    const rows = Number(delivered.n);
    return { rows, seconds: Math.round(seconds * 100) / 100, rowsPerSecond: Math.round(rows / seconds) };
  } finally {
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(
      workers.map((w) => new Promise((res) => (w.child.exitCode !== null ? res(null) : w.child.on('exit', res)))),
    );
    await jobs.stop();
    await ctx.close();
    await database.drop();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-scale-'));
  process.env.AMPSIGNAL_SECRET_KEY ??= `${'0'.repeat(63)}1`;
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  writeFileSync(join(dir, 'users.csv'), `${users.join('\n')}\n`);
  const emu = await startOneSignalEmulator({
    apps: Array.from({ length: APPS }, (_, a) => ({ appId: appId(a), apiKey: `key-${a}` })),
    rateLimitPerSecond: 1_000_000,
    perUserPerSecond: 1_000_000,
    users: { mode: 'seeded', ids: users },
  });
  try {
    const one = await measure(1, emu.url, dir);
    const two = await measure(2, emu.url, dir);
    const four = await measure(4, emu.url, dir);
    return {
      bench: 'scale',
      apps: APPS,
      users_per_app: USERS,
      rows_per_second: { p1: one.rowsPerSecond, p2: two.rowsPerSecond, p4: four.rowsPerSecond },
      seconds: { p1: one.seconds, p2: two.seconds, p4: four.seconds },
      ratio_2: Math.round((two.rowsPerSecond / one.rowsPerSecond) * 100) / 100,
      ratio: Math.round((four.rowsPerSecond / one.rowsPerSecond) * 100) / 100,
    };
  } finally {
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
