/**
 * `deliver`: tag updates per second through the engine (claim → coalesce → PATCH → record)
 * against the OneSignal emulator with its limits off, side by side with autocannon hitting the
 * same emulator endpoint with the same request bodies (the ceiling of this machine + emulator).
 * Target ours/ceiling ≥ 0.7.
 *
 * The emulator runs in its own process (as OneSignal does on its machines), and so does
 * autocannon: in one process the engine's synchronous SQLite work and GC stalled the emulator's
 * event loop (evenly paced requests then reached its rate window bunched → 429s), and the
 * ceiling shared a CPU with the load generator it was measuring.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addDestination } from '../src/app/destinations';
import { AUTH_SCHEME } from '../src/connectors/onesignal/constants';
import type { EmulatorStats, Tags } from '../src/emulators/onesignal/index';
import type { Context } from '../src/store';
import { importCohortFile } from '../src/sync/cohorts';
import { deliverDestination } from '../src/sync/deliver';
import { runSync } from '../src/sync/run';
import { createSync, type SyncRow } from '../src/sync/syncs';
import { AS_WORKER, type BenchDialect, openBenchContext } from './db';
import { median } from './load';

const USERS = 20_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The engine's in-flight window (src/sync/deliver.ts CONCURRENCY, the shared agent's pool size): the ceiling gets the same. */
const CONNECTIONS = 128;

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..');
const CEILING = join(here, 'deliver.ceiling.mjs');

/** The emulator's limits, as `ampsignal emulator onesignal` flags take them (0 = off). */
export interface BenchEmulatorLimits {
  rateLimit: number;
  perUserLimit: number;
}

/** A OneSignal emulator in a child process, driven through its /_emulator control routes. */
export interface ChildEmulator {
  url: string;
  stats(): Promise<EmulatorStats>;
  getUser(externalId: string): Promise<Tags | undefined>;
  /** Back to the seeded users without tags, zeroed stats. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

async function startChildEmulator(
  appId: string,
  apiKey: string,
  seedFile: string,
  limits: BenchEmulatorLimits,
): Promise<ChildEmulator> {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/ampsignal.mjs'),
      'emulator',
      'onesignal',
      '--port',
      '0',
      '--json',
      '--app',
      `${appId}:${apiKey}`,
      '--seed-file',
      seedFile,
      '--rate-limit',
      String(limits.rateLimit),
      '--per-user-limit',
      String(limits.perUserLimit),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await readStartupUrl(child);
  const appUrl = (path: string) => `${url}${path}`;
  const control = async (method: 'GET' | 'POST', path: string): Promise<Response> => {
    const res = await fetch(appUrl(path), {
      method,
      ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
    });
    return res;
  };
  return {
    url,
    async stats() {
      const res = await control('GET', '/_emulator/state?summary=1');
      if (!res.ok) throw new Error(`emulator state: HTTP ${res.status}`);
      return ((await res.json()) as { stats: EmulatorStats }).stats;
    },
    async getUser(externalId) {
      const res = await control(
        'GET',
        `/_emulator/users/${encodeURIComponent(appId)}/${encodeURIComponent(externalId)}`,
      );
      if (res.status === 404) return undefined;
      return ((await res.json()) as { tags: Tags }).tags;
    },
    async reset() {
      const res = await control('POST', '/_emulator/reset');
      if (!res.ok) throw new Error(`emulator reset: HTTP ${res.status}`);
    },
    async close() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The emulator prints its start-up JSON (pretty-printed, several lines) once it listens. */
function readStartupUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(new Error('the emulator did not start within 30 s')), 30_000);
    const fail = (e: Error) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        const parsed = JSON.parse(out) as { url: string };
        clearTimeout(timer);
        resolve(parsed.url);
      } catch {
        // Not complete yet.
      }
    });
    child.once('exit', (code) => fail(new Error(`the emulator exited (${code}) before listening: ${err.trim()}`)));
  });
}

/** A throwaway database, an emulator app (own process) seeded with `users`, and a destination on it. */
export async function benchSetup(opts: {
  dialect: BenchDialect;
  label: string;
  users: string[];
  emulator: BenchEmulatorLimits;
  rate: number;
}) {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-'));
  const usersFile = join(dir, 'users.txt');
  writeFileSync(usersFile, `${opts.users.join('\n')}\n`);
  const appId = randomUUID();
  const apiKey = 'bench-key';
  let emu: ChildEmulator | undefined;
  let bench: Awaited<ReturnType<typeof openBenchContext>> | undefined;
  try {
    emu = await startChildEmulator(appId, apiKey, usersFile, opts.emulator);
    bench = await openBenchContext(opts.dialect, opts.label, AS_WORKER);
  } catch (e) {
    await emu?.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const b = bench;
  const c = bench.ctx;
  const dest = await addDestination(c, {
    name: 'bench',
    app_id: appId,
    api_key: apiKey,
    api_url: emu.url,
    rate_limit_per_second: opts.rate,
  });
  let n = 0;
  const addCohort = async (ids: string[]): Promise<SyncRow> => {
    const f = join(dir, `c${++n}.txt`);
    writeFileSync(f, `${ids.join('\n')}\n`);
    const imp = await importCohortFile(c, { file: f, name: `bench ${n}` });
    return createSync(c, { cohortId: imp.cohort_id, destinationId: dest.id });
  };
  const e = emu;
  const close = async () => {
    await e.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ctx: c, emu: e, dest, appId, apiKey, usersFile, addCohort, close, dbUrl: b.database.url };
}

/** Applies the sync's diff (no delivery), then times one delivery pass. */
export async function timedDelivery(ctx: Context, syncs: SyncRow[], destinationId: string) {
  for (const s of syncs) await runSync(ctx, s.id, { deliver: 'enqueue' });
  const t0 = performance.now();
  const r = await deliverDestination(ctx, destinationId);
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

type BenchSetup = Awaited<ReturnType<typeof benchSetup>>;

/**
 * One timed round from the same start as every other: the emulator back to its seeded users
 * (no tags, empty rate windows), the rows of these syncs pending again after the first round,
 * then one delivery pass that must deliver all `expected` users.
 */
export async function timedRound(b: BenchSetup, syncs: SyncRow[], round: number, expected: number) {
  await b.emu.reset();
  if (round > 0) await markUndelivered(b.ctx, syncs);
  const t0 = performance.now();
  const r = await deliverDestination(b.ctx, b.dest.id);
  const seconds = (performance.now() - t0) / 1000;
  if (r.delivered !== expected) throw new Error(`delivered ${r.delivered} of ${expected}`);
  return { ...r, seconds };
}

/** Sets every ledger row of these syncs pending again (as if OneSignal had lost the tags), for another timed pass. */
export async function markUndelivered(ctx: Context, syncs: SyncRow[]): Promise<void> {
  await ctx.store.db
    .updateTable('ledger')
    .set({ confirmed: 0, outcome: null, error: null, attempts: 0, next_attempt_at: null })
    .where(
      'sync_id',
      'in',
      syncs.map((s) => s.id),
    )
    .execute();
}

/** autocannon (own process) sending what the engine sends: one PATCH per user, same path, headers and body. */
async function ceiling(
  url: string,
  appId: string,
  apiKey: string,
  usersFile: string,
  tagKey: string,
): Promise<{ requests: number; seconds: number }> {
  // Byte for byte the engine's request (src/connectors/onesignal/client.ts): an add of this tag.
  const headers = {
    authorization: `${AUTH_SCHEME} ${apiKey}`,
    accept: 'application/json',
    'content-type': 'application/json; charset=utf-8',
  };
  const body = JSON.stringify({ properties: { tags: { [tagKey]: '1' } } });
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [CEILING, url, appId, usersFile, String(CONNECTIONS), JSON.stringify(headers), body],
      { maxBuffer: 16 << 20, timeout: 300_000 },
      (err, out, stderr) => {
        if (err) reject(new Error(`autocannon failed: ${stderr || err.message}`));
        else resolve(out);
      },
    );
  });
  const r = JSON.parse(stdout) as { requests: number; seconds: number; non2xx: number; errors: number };
  if (r.non2xx > 0 || r.errors > 0)
    throw new Error(`autocannon saw ${r.non2xx} non-2xx answers and ${r.errors} errors`);
  return r;
}

export async function run(dialect: BenchDialect): Promise<Record<string, unknown>> {
  const loadStart = Math.round(loadavg()[0]! * 10) / 10;
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  const b = await benchSetup({
    dialect,
    label: 'deliver',
    users,
    emulator: { rateLimit: 0, perUserLimit: 0 },
    rate: 100_000,
  });
  try {
    const sync = await b.addCohort(users);
    await runSync(b.ctx, sync.id, { deliver: 'enqueue' });
    // Interleaved rounds, each side starting from the same emulator state (seeded users, no
    // tags), so machine noise (other processes on the box) hits both sides alike; medians. The
    // first round is not counted: it warms the engine's JIT and the emulator, as alternate()
    // does for the HTTP benches (a worker delivers for days; its first seconds are not its pace).
    const oursRps: number[] = [];
    const ceilRps: number[] = [];
    for (let round = 0; round <= ROUNDS; round++) {
      const r = await timedRound(b, [sync], round, USERS);
      await b.emu.reset();
      const c = await ceiling(b.emu.url, b.appId, b.apiKey, b.usersFile, sync.tag_key);
      if (round === 0) continue;
      oursRps.push(r.requests / r.seconds);
      ceilRps.push(c.requests / (c.seconds || 1));
    }
    const ratios = oursRps.map((o, i) => o / ceilRps[i]!);
    return {
      bench: 'deliver',
      users: USERS,
      rounds: ROUNDS,
      ours_req_per_s: oursRps.map(Math.round),
      ceiling_req_per_s: ceilRps.map(Math.round),
      baseline: `autocannon in its own process, ${CONNECTIONS} connections, same endpoint, headers and bodies; emulator in its own process`,
      ratio: Math.round(median(ratios) * 100) / 100,
      // Other processes on this machine (tests, benches) skew both sides; this says how busy it was.
      load_avg_1m: [loadStart, Math.round(loadavg()[0]! * 10) / 10],
      target_ratio: '>= 0.7 (median of rounds)',
    };
  } finally {
    await b.close();
  }
}
