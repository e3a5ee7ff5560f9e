/**
 * `deliver`: tag updates per second through the engine (claim → coalesce → PATCH → record)
 * against the OneSignal emulator with its limits off, side by side with autocannon hitting the
 * same emulator endpoint with the same request bodies (the ceiling of this machine + emulator).
 * Target ours/ceiling ≥ 0.7.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createDestination } from '../src/connectors/onesignal/destinations';
import { startOneSignalEmulator, type OneSignalEmulator, type OneSignalEmulatorOptions } from '../src/emulators/onesignal/index';
import { openContext, type Context } from '../src/store';
import { importCohortFile } from '../src/sync/cohorts';
import { deliverDestination } from '../src/sync/deliver';
import { runSync } from '../src/sync/run';
import { createSync, type SyncRow } from '../src/sync/syncs';

const USERS = 20_000;

// autocannon ships no type declarations; this is the part of its API used here.
type AutocannonResult = { non2xx: number; duration: number; requests: { total: number } };
const autocannon = createRequire(import.meta.url)('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;

/** A throwaway SQLite database, an emulator app seeded with `users`, and a destination on it. */
export async function benchSetup(opts: { users: string[]; emulator: Partial<OneSignalEmulatorOptions>; rate: number }) {
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-bench-'));
  const ctx = await openContext({ db: `sqlite:${join(dir, 'bench.db')}`, migrate: 'auto' });
  const appId = randomUUID();
  const apiKey = 'bench-key';
  const emu = await startOneSignalEmulator({ apps: [{ appId, apiKey }], users: { mode: 'seeded', ids: opts.users }, ...opts.emulator } as OneSignalEmulatorOptions);
  const dest = await createDestination(ctx, { name: 'bench', app_id: appId, api_key: apiKey, api_url: emu.url, rate_limit_per_second: opts.rate });
  let n = 0;
  const addCohort = async (ids: string[]): Promise<SyncRow> => {
    const f = join(dir, `c${++n}.txt`);
    writeFileSync(f, ids.join('\n') + '\n');
    const imp = await importCohortFile(ctx, { file: f, name: `bench ${n}` });
    return createSync(ctx, { cohortId: imp.cohort_id, destinationId: dest.id });
  };
  const close = async () => {
    await emu.close();
    await ctx.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ctx, emu, dest, appId, apiKey, addCohort, close };
}

/** Applies the sync's diff (no delivery), then times one delivery pass. */
export async function timedDelivery(ctx: Context, syncs: SyncRow[], destinationId: string) {
  for (const s of syncs) await runSync(ctx, s.id, { deliver: 'enqueue' });
  const t0 = performance.now();
  const r = await deliverDestination(ctx, destinationId);
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

async function ceiling(emu: OneSignalEmulator, appId: string, apiKey: string, tagKey: string, users: string[]): Promise<number> {
  let i = 0;
  const body = JSON.stringify({ properties: { tags: { [tagKey]: '' } } });
  const result = await autocannon({
    url: emu.url,
    connections: 128,
    amount: users.length,
    requests: [
      {
        method: 'PATCH',
        headers: { authorization: `Key ${apiKey}`, 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => ({
          ...req,
          path: `/apps/${appId}/users/by/external_id/${encodeURIComponent(users[i++ % users.length]!)}`,
          body,
        }),
      },
    ],
  });
  if (result.non2xx > 0) throw new Error(`autocannon saw ${result.non2xx} non-2xx answers`);
  return result.requests.total / (result.duration || 1);
}

export async function run(): Promise<Record<string, unknown>> {
  const users = Array.from({ length: USERS }, (_, i) => `user_${i}`);
  const b = await benchSetup({ users, emulator: { rateLimitPerSecond: 0, perUserPerSecond: 0 }, rate: 100_000 });
  try {
    const sync = await b.addCohort(users);
    const ours = await timedDelivery(b.ctx, [sync], b.dest.id);
    if (ours.delivered !== USERS) throw new Error(`delivered ${ours.delivered} of ${USERS}`);
    const oursRps = ours.requests / ours.seconds;
    // Same endpoint, same body shape (this tag key, removal), so the emulator does the same work.
    const ceilRps = await ceiling(b.emu, b.appId, b.apiKey, sync.tag_key, users);
    return {
      bench: 'deliver',
      users: USERS,
      ours_req_per_s: Math.round(oursRps),
      ceiling_req_per_s: Math.round(ceilRps),
      baseline: 'autocannon, 128 connections, same endpoint and bodies',
      ratio: Math.round((oursRps / ceilRps) * 100) / 100,
      target_ratio: '>= 0.7',
    };
  } finally {
    await b.close();
  }
}
