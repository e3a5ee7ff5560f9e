import { sql } from 'kysely';
import { type DestinationRow, getDestination } from '../connectors/onesignal/destinations';
import { syncTags, type TagValueKind } from '../connectors/onesignal/sync-tags';
import { OneSignalUserReader, type ViewedUser } from '../connectors/onesignal/view-user';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { keepRenewing, LEASE_MS } from '../store/leases';
import type { VerificationsTable } from '../store/schema';
import { getSync } from './syncs';

/**
 * Read-back verification of a sync (`ampsignal sync verify`). OneSignal answers 202 to a tag
 * update, which means accepted, not applied; and tags change under us (the app's SDK on the
 * device, dashboard CSV imports, other tools). So a random sample of the sync's settled ledger
 * rows (desired = confirmed) is read back through View user, paced within its 1 request per
 * second per app, and each user's tag is compared with what the ledger says OneSignal holds.
 *
 * A drifted user is one whose tag is missing or changed although the ledger says it is set,
 * whose tag is there although the ledger says it was removed, or who is gone from OneSignal
 * although the ledger says the tag is set. `repair` marks them pending again (confirmed = what
 * OneSignal actually holds), so the next delivery of the destination sends the change.
 */

export const DEFAULT_VERIFY_SAMPLE = 50;
/** At one read per second, about 3 hours: beyond that a sample is no longer a sample. */
export const MAX_VERIFY_SAMPLE = 10_000;
/** Drifted users kept on the verification row (the counts are always complete). */
export const VERIFY_DRIFT_KEPT = 1_000;

export const DRIFT_KINDS = ['tag_missing', 'tag_changed', 'tag_present_after_leaving', 'user_gone'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface DriftedUser {
  external_id: string;
  kind: DriftKind;
  /** The tag value the ledger expects at OneSignal; null = no tag. */
  expected: string | null;
  /** What OneSignal holds; null = no tag (or no user). */
  actual: string | null;
}

export type VerificationStatus = 'running' | 'completed' | 'failed' | 'abandoned';

export interface VerificationView {
  id: string;
  sync_id: string;
  status: VerificationStatus;
  trigger: string;
  tag_key: string | null;
  sample_size: number;
  checked: number;
  matched: number;
  drifted: number;
  skipped: number;
  repaired: number;
  /** matched / (matched + drifted), 0..1; null when nothing was compared. */
  match_rate: number | null;
  drift: DriftedUser[];
  error: string | null;
  started_at: number;
  finished_at: number | null;
}

export interface VerifyOptions {
  sample?: number;
  repair?: boolean;
  trigger?: 'manual' | 'schedule' | 'api';
  signal?: AbortSignal;
  /** After each user read back. */
  onProgress?: (p: { done: number; total: number }) => void;
}

interface Sampled {
  external_id: string;
  desired: number;
  confirmed: number;
  updated_at: number;
  entered_at: number | null;
}

/** Checks `sample` (default DEFAULT_VERIFY_SAMPLE, at most MAX_VERIFY_SAMPLE) and returns the report. */
export function parseSample(sample: number | undefined): number {
  const n = sample ?? DEFAULT_VERIFY_SAMPLE;
  if (!Number.isInteger(n) || n < 1 || n > MAX_VERIFY_SAMPLE)
    throw new AmpError('invalid_input', `sample must be a whole number from 1 to ${MAX_VERIFY_SAMPLE} (got ${n})`);
  return n;
}

/** Verifies a sync now and returns its report; the verification row records it as it goes. */
export async function verifySync(ctx: Context, syncId: string, opts: VerifyOptions = {}): Promise<VerificationView> {
  const started = await startVerification(ctx, syncId, opts);
  return finishVerification(ctx, started, opts);
}

export interface StartedVerification {
  id: string;
  syncId: string;
  tagKey: string;
  /** How the sync writes a member's tag value ("1", or the entry time). */
  valueKind: TagValueKind;
  sample: number;
  destination: DestinationRow;
}

/**
 * Checks the sync and its destination and records a `running` verification (what an API call
 * answers with before the reads, which take a second each, are done).
 */
export async function startVerification(
  ctx: Context,
  syncId: string,
  opts: Pick<VerifyOptions, 'sample' | 'trigger'> = {},
): Promise<StartedVerification> {
  const sample = parseSample(opts.sample);
  const sync = await getSync(ctx, syncId);
  const destination = await getDestination(ctx, sync.destination_id);
  if (destination.status === 'paused')
    throw new AmpError(
      'run_state',
      `destination ${destination.id} is paused: ${destination.status_reason ?? 'no reason given'}; resume it before verifying its syncs`,
    );
  const now = Date.now();
  const row: VerificationsTable = {
    id: newId('ver'),
    sync_id: syncId,
    status: 'running',
    trigger: opts.trigger ?? 'manual',
    sample_size: sample,
    checked: 0,
    matched: 0,
    drifted: 0,
    skipped: 0,
    repaired: 0,
    match_rate: null,
    drift: null,
    error: null,
    started_at: now,
    finished_at: null,
    lease_until: now + LEASE_MS,
  };
  await ctx.store.db.insertInto('verifications').values(row).execute();
  return {
    id: row.id,
    syncId,
    tagKey: sync.tag_key,
    valueKind: syncTags.valueKind(sync.tag_value),
    sample,
    destination,
  };
}

/** Reads the sample back, compares, repairs if asked, and closes the verification row. */
export async function finishVerification(
  ctx: Context,
  v: StartedVerification,
  opts: VerifyOptions = {},
): Promise<VerificationView> {
  const heartbeat = keepRenewing(`verification ${v.id}`, LEASE_MS, () =>
    ctx.store.db
      .updateTable('verifications')
      .set({ lease_until: Date.now() + LEASE_MS })
      .where('id', '=', v.id)
      .execute(),
  );
  try {
    const sampled = await sampleSettledRows(ctx, v.syncId, v.sample);
    const viewed = await readBack(ctx, v, sampled, opts);
    const unchanged = await stillSettled(ctx, v.syncId, sampled);
    const result = tally(v, viewed, unchanged);
    const repaired = opts.repair ? await markPending(ctx, v.syncId, result.drift, unchanged) : 0;
    await recordVerification(ctx, v, { ...result, checked: viewed.length, repaired });
  } catch (e) {
    const err = toAmpError(e);
    await ctx.store.db
      .updateTable('verifications')
      .set({ status: 'failed', error: err.message, finished_at: Date.now(), lease_until: null })
      .where('id', '=', v.id)
      .execute();
    throw err;
  } finally {
    await heartbeat.stop();
  }
  return getVerification(ctx, v.id);
}

type Viewed = Array<{ row: Sampled; user: ViewedUser }>;

/** Each sampled user read back through View user (paced by the reader). */
async function readBack(
  ctx: Context,
  v: StartedVerification,
  sampled: Sampled[],
  opts: VerifyOptions,
): Promise<Viewed> {
  const reader = new OneSignalUserReader({
    appId: v.destination.app_id,
    apiKey: ctx.secrets.decrypt(v.destination.api_key_enc),
    apiUrl: v.destination.api_url,
  });
  const viewed: Viewed = [];
  for (const row of sampled) {
    viewed.push({ row, user: await reader.viewUser(row.external_id, opts.signal ? { signal: opts.signal } : {}) });
    opts.onProgress?.({ done: viewed.length, total: sampled.length });
  }
  return viewed;
}

interface Tally {
  matched: number;
  skipped: number;
  drift: DriftedUser[];
}

/** Compares the users whose rows stayed settled while we read; drift sorted by kind, then user. */
function tally(v: StartedVerification, viewed: Viewed, unchanged: Set<string>): Tally {
  const t: Tally = { matched: 0, skipped: 0, drift: [] };
  for (const { row, user } of viewed) {
    if (!unchanged.has(row.external_id)) {
      t.skipped++;
      continue;
    }
    const d = compare(row, user, v.tagKey, v.valueKind);
    if (d) t.drift.push(d);
    else t.matched++;
  }
  t.drift.sort(
    (a, b) => DRIFT_KINDS.indexOf(a.kind) - DRIFT_KINDS.indexOf(b.kind) || a.external_id.localeCompare(b.external_id),
  );
  return t;
}

/** Closes the verification row with its figures and gives the sync its last match rate, together. */
async function recordVerification(
  ctx: Context,
  v: StartedVerification,
  r: Tally & { checked: number; repaired: number },
): Promise<void> {
  const compared = r.matched + r.drift.length;
  const matchRate = compared === 0 ? null : r.matched / compared;
  const finishedAt = Date.now();
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx
      .updateTable('verifications')
      .set({
        status: 'completed',
        checked: r.checked,
        matched: r.matched,
        drifted: r.drift.length,
        skipped: r.skipped,
        repaired: r.repaired,
        match_rate: matchRate,
        drift: JSON.stringify(r.drift.slice(0, VERIFY_DRIFT_KEPT)),
        finished_at: finishedAt,
        lease_until: null,
      })
      .where('id', '=', v.id)
      .execute();
    // The drift alert reads the last rate; a verification that compared nothing says nothing about it.
    await trx
      .updateTable('syncs')
      .set({ verified_at: finishedAt, ...(matchRate === null ? {} : { verify_match_rate: matchRate }) })
      .where('id', '=', v.syncId)
      .execute();
  });
}

/**
 * A random sample of the sync's rows whose last change OneSignal confirmed (desired = confirmed)
 * and that no delivery holds. ORDER BY random() reads all of the sync's rows once (by the
 * primary key's sync_id prefix); for a daily sample that is cheap next to the reads themselves.
 */
async function sampleSettledRows(ctx: Context, syncId: string, n: number): Promise<Sampled[]> {
  const now = Date.now();
  const rows = await ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'confirmed', 'updated_at', 'entered_at'])
    .where('sync_id', '=', syncId)
    .whereRef('desired', '=', 'confirmed')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .orderBy(sql`random()`)
    .limit(n)
    .execute();
  return rows.map((r) => ({
    external_id: r.external_id,
    desired: Number(r.desired),
    confirmed: Number(r.confirmed),
    updated_at: Number(r.updated_at),
    entered_at: r.entered_at === null ? null : Number(r.entered_at),
  }));
}

/**
 * The sampled users whose ledger row is as it was when sampled: a row a delivery or a pull
 * changed while we read is not compared (OneSignal may hold either state).
 */
async function stillSettled(ctx: Context, syncId: string, sampled: Sampled[]): Promise<Set<string>> {
  const out = new Set<string>();
  const byId = new Map(sampled.map((s) => [s.external_id, s]));
  const ids = [...byId.keys()];
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await ctx.store.db
      .selectFrom('ledger')
      .select(['external_id', 'desired', 'confirmed', 'updated_at'])
      .where('sync_id', '=', syncId)
      .where('external_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) {
      const s = byId.get(r.external_id)!;
      if (
        Number(r.desired) === s.desired &&
        Number(r.confirmed) === s.confirmed &&
        Number(r.updated_at) === s.updated_at
      )
        out.add(r.external_id);
    }
  }
  return out;
}

/** The drift of one user, or null when OneSignal holds what the ledger says. */
export function compare(
  row: Pick<Sampled, 'external_id' | 'confirmed'> & { entered_at?: number | null },
  user: ViewedUser,
  tagKey: string,
  valueKind: TagValueKind = 'presence',
): DriftedUser | null {
  const expected =
    row.confirmed === 1 ? syncTags.tagValue({ member: true, valueKind, enteredAtMs: row.entered_at ?? null }) : null;
  if (!user.found)
    return expected === null ? null : { external_id: row.external_id, kind: 'user_gone', expected, actual: null };
  const actual = user.tags[tagKey] ?? null;
  if (actual === expected) return null;
  const kind: DriftKind =
    expected === null ? 'tag_present_after_leaving' : actual === null ? 'tag_missing' : 'tag_changed';
  return { external_id: row.external_id, kind, expected, actual };
}

/**
 * Marks drifted rows pending: `confirmed` becomes what OneSignal holds (the opposite of
 * `desired`), with a fresh delivery state and no run (the run that set it is long finished).
 * Guarded on the row being still settled, so a row changed meanwhile is left to its own delivery.
 */
async function markPending(
  ctx: Context,
  syncId: string,
  drift: DriftedUser[],
  unchanged: Set<string>,
): Promise<number> {
  const ids = drift.map((d) => d.external_id).filter((id) => unchanged.has(id));
  let n = 0;
  const now = Date.now();
  for (let i = 0; i < ids.length; i += 500) {
    const r = await ctx.store.db
      .updateTable('ledger')
      .set({
        confirmed: sql`1 - desired`,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        run_id: null,
        updated_at: now,
      })
      .where('sync_id', '=', syncId)
      .where('external_id', 'in', ids.slice(i, i + 500))
      .whereRef('desired', '=', 'confirmed')
      .executeTakeFirst();
    n += Number(r.numUpdatedRows);
  }
  return n;
}

function view(r: VerificationsTable, tagKey: string | null, now = Date.now()): VerificationView {
  const abandoned = r.status === 'running' && r.lease_until !== null && Number(r.lease_until) < now;
  return {
    id: r.id,
    sync_id: r.sync_id,
    status: abandoned ? 'abandoned' : (r.status as VerificationStatus),
    trigger: r.trigger,
    tag_key: tagKey,
    sample_size: Number(r.sample_size),
    checked: Number(r.checked),
    matched: Number(r.matched),
    drifted: Number(r.drifted),
    skipped: Number(r.skipped),
    repaired: Number(r.repaired),
    match_rate: r.match_rate === null ? null : Number(r.match_rate),
    drift: r.drift ? (JSON.parse(r.drift) as DriftedUser[]) : [],
    error: r.error,
    started_at: Number(r.started_at),
    finished_at: r.finished_at === null ? null : Number(r.finished_at),
  };
}

async function tagKeyOf(ctx: Context, syncId: string): Promise<string | null> {
  const s = await ctx.store.db.selectFrom('syncs').select('tag_key').where('id', '=', syncId).executeTakeFirst();
  return s?.tag_key ?? null;
}

export async function getVerification(ctx: Context, id: string): Promise<VerificationView> {
  const r = await ctx.store.db.selectFrom('verifications').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw new AmpError('not_found', `no verification with id ${id}`);
  return view(r, await tagKeyOf(ctx, r.sync_id));
}

/** A sync's verifications, newest first. */
export async function listVerifications(ctx: Context, syncId: string, limit = 20): Promise<VerificationView[]> {
  await getSync(ctx, syncId);
  const rows = await ctx.store.db
    .selectFrom('verifications')
    .selectAll()
    .where('sync_id', '=', syncId)
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  const tagKey = await tagKeyOf(ctx, syncId);
  return rows.map((r) => view(r, tagKey));
}
