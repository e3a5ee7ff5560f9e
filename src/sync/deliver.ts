import { sql } from 'kysely';
import { clientForDestination, getDestination, pauseDestination } from '../connectors/onesignal/destinations';
import { syncTags, type TagChange, type TagSettlement } from '../connectors/onesignal/sync-tags';
import { AmpError, type Backoff, delay, retryDelayMs } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { keepRenewing, LEASE_MS } from '../store/leases';
import { recordPacingHandoff, takeOverPacing } from './handoff';
import { finalizeRunsOfDestination } from './run-record';

/** Users claimed per round; all of a user's pending rows (every sync) come in one claim. */
const CHUNK_USERS = 1000;
/** Requests in flight per delivery; the client's per-app limiter does the pacing. */
const CONCURRENCY = 128;
/**
 * The next chunk is claimed once fewer users than this are left unsent: 2× the in-flight window,
 * so the claim (synchronous on SQLite) lands well before the senders run dry.
 */
const CLAIM_AHEAD_USERS = 2 * CONCURRENCY;
/**
 * Outcomes are written in batches of this many rows: one write (synchronous on SQLite, it blocks
 * the event loop) then stalls the senders for milliseconds, which the limiter's rolling window
 * makes up afterwards, instead of one long stall per chunk; still large enough to amortise the
 * per-transaction cost.
 */
const FLUSH_ROWS = 250;
/**
 * 10 attempts: at a 25% transient fault rate (errors + dropped connections) a record still
 * fails only with probability 0.25^10 ≈ 1e-6; the capped backoff keeps the worst case ~26 s.
 */
export const MAX_ATTEMPTS = 10;
/** Short and capped: a run with a 10% fault rate still ends in seconds. */
const DELIVERY_BACKOFF: Backoff = { baseMs: 200, capMs: 5_000 };
/** A pass waits for retries due within this horizon instead of returning with rows pending. */
const MAX_RETRY_WAIT_MS = 60_000;

interface Claimed {
  sync_id: string;
  external_id: string;
  desired: number;
  attempts: number;
}

interface Outcome {
  syncId: string;
  externalId: string;
  sent: number;
  outcome: 'delivered' | 'not_found' | 'failed' | 'retry';
  error: string | null;
  attempts: number;
  nextAttemptAt: number | null;
}

export interface DeliverOptions {
  workerId?: string;
  signal?: AbortSignal;
  /** Called after every batch of outcomes is written, with the rows resolved so far in this pass. */
  onProgress?: (p: { done: number }) => void;
}

/**
 * Delivers every due pending ledger row of one destination (DESIGN §2–3): rows are claimed with
 * a lease by a guarded UPDATE (two workers never hold the same row), grouped per user across all
 * syncs of the destination (one PATCH carries all of a user's tag changes), sent, and
 * `confirmed` is set only from OneSignal's answer. Then the counters of runs whose rows are all
 * resolved are finalized.
 *
 * A destination_fatal answer (401/403) pauses the destination, leaves every row pending and
 * rethrows it; callers fail their run with its message.
 */
export async function deliverDestination(
  ctx: Context,
  destinationId: string,
  opts: DeliverOptions = {},
): Promise<{ requests: number; delivered: number; pending: number }> {
  const workerId = opts.workerId ?? newId('wrk');
  const dest = await deliverableDestination(ctx, destinationId);
  const client = clientForDestination(ctx, dest);
  const requestsBefore = client.requests;
  const tagKeys = new Map<string, string>();
  const loadTagKeys = async () => {
    const rows = await ctx.store.db
      .selectFrom('syncs')
      .select(['id', 'tag_key'])
      .where('destination_id', '=', destinationId)
      .execute();
    for (const r of rows) tagKeys.set(r.id, r.tag_key);
  };
  await loadTagKeys();

  let delivered = 0;
  let done = 0;
  const maxTagsPerUser = Number(dest.max_tags_per_user);

  // One continuous pipeline instead of claim → send → record rounds: a round's barrier (the
  // last slow requests of a chunk, then the outcome write, then the next claim) leaves the
  // limiter with nobody waiting, and every idle millisecond beyond its small burst is send
  // capacity lost for good. Here the next chunk is claimed while users of the current one are
  // still queued, and outcomes are written in batches behind the senders.
  const queue: Array<{ user: string; rows: Claimed[]; confirmedTags: number }> = [];
  let head = 0;
  let claiming: Promise<void> | undefined;
  let exhausted = false;
  let fatal: AmpError | undefined;
  let failure: unknown;
  let buffer: Outcome[] = [];
  let flushing: Promise<void> = Promise.resolve();
  const stopped = () => fatal !== undefined || failure !== undefined || opts.signal?.aborted === true;

  const claimMore = (): Promise<void> =>
    (claiming ??= (async () => {
      try {
        const claimed = await claimChunk(ctx, destinationId, workerId);
        if (claimed.length === 0) {
          exhausted = true;
          return;
        }
        if (claimed.some((c) => !tagKeys.has(c.sync_id))) await loadTagKeys();
        const byUser = new Map<string, Claimed[]>();
        for (const c of claimed) {
          const list = byUser.get(c.external_id);
          if (list) list.push(c);
          else byUser.set(c.external_id, [c]);
        }
        const counts = await confirmedTagCounts(ctx, destinationId, [...byUser.keys()]);
        if (head > 4_096) {
          queue.splice(0, head);
          head = 0;
        }
        for (const [user, rows] of byUser) queue.push({ user, rows, confirmedTags: counts.get(user) ?? 0 });
      } catch (e) {
        failure ??= e;
      } finally {
        claiming = undefined;
      }
    })());

  // Serialised writes: rows stay leased (so nobody else claims them) until their outcome lands.
  const flush = (): Promise<void> => {
    if (buffer.length === 0) return flushing;
    const batch = buffer;
    buffer = [];
    flushing = flushing.then(async () => {
      try {
        await writeOutcomes(ctx, workerId, batch);
      } catch (e) {
        failure ??= e;
        return;
      }
      for (const o of batch) {
        if (o.outcome === 'delivered') delivered++;
        if (o.outcome !== 'retry') done++;
      }
      opts.onProgress?.({ done });
    });
    return flushing;
  };

  const worker = async (): Promise<void> => {
    while (!stopped()) {
      if (head >= queue.length) {
        if (exhausted) return;
        await claimMore();
        continue;
      }
      const item = queue[head++]!;
      if (!exhausted && queue.length - head < CLAIM_AHEAD_USERS) void claimMore();
      const r = await deliverUser(client, item.user, item.rows, tagKeys, item.confirmedTags, maxTagsPerUser);
      if (r.fatal) fatal ??= r.fatal;
      for (const o of r.results) buffer.push(o);
      if (buffer.length >= FLUSH_ROWS) void flush();
    }
  };

  // Claimed rows stay ours while this pass lives; a dead pass's rows are free within LEASE_MS.
  const heartbeat = keepRenewing(`delivery ${destinationId}`, LEASE_MS, () =>
    renewLeases(ctx, destinationId, workerId),
  );
  try {
    await claimMore();
    if (queue.length > head) await takeOverPacing(ctx, client.limiter);
    while (!opts.signal?.aborted) {
      exhausted = false;
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      await claiming;
      await flush();
      if (failure !== undefined) throw failure;
      if (fatal) {
        await pauseDestination(ctx, destinationId, fatal.message);
        throw fatal;
      }
      if (opts.signal?.aborted) break;
      // Nothing due right now: wait for retries due shortly instead of returning with rows pending.
      const next = await nextRetryAt(ctx, destinationId);
      if (next === null) break;
      const wait = next - Date.now();
      if (wait > MAX_RETRY_WAIT_MS) break;
      // Backoff wait for rows whose retry is due shortly (not a test synchronisation); a stop
      // ends the wait, and the loop's condition then ends the pass.
      if (wait > 0) await delay(wait, opts.signal).catch(() => undefined);
    }
  } finally {
    await claiming;
    await heartbeat.stop();
    // Outcomes first: their UPDATE matches on our lease, which releaseLeases clears.
    await flush();
    await releaseLeases(ctx, destinationId, [workerId]);
    if (client.requests > requestsBefore) await recordPacingHandoff(ctx, client.limiter);
  }
  await finalizeRunsOfDestination(ctx, destinationId);
  const pending = await countPending(ctx, destinationId);
  return { requests: client.requests - requestsBefore, delivered, pending };
}

/** The destination, refused while paused (a refused key paused it; a person resumes it). */
export async function deliverableDestination(ctx: Context, destinationId: string) {
  const dest = await getDestination(ctx, destinationId);
  if (dest.status === 'paused') {
    throw new AmpError(
      'run_state',
      `destination ${destinationId} is paused: ${dest.status_reason ?? 'no reason given'}; resume it with \`ampsignal destination resume ${destinationId}\``,
    );
  }
  return dest;
}

/** Rows waiting to be sent: desired != confirmed, never tried or due for retry, lease free. */
function dueSql(now: number) {
  return sql`desired <> confirmed AND (outcome IS NULL OR (outcome = 'retry' AND next_attempt_at <= ${now}))
    AND (lease_until IS NULL OR lease_until < ${now})`;
}

async function claimChunk(ctx: Context, destinationId: string, workerId: string): Promise<Claimed[]> {
  const db = ctx.store.db;
  const now = Date.now();
  const users = await sql<{ external_id: string }>`
    SELECT DISTINCT external_id FROM ledger WHERE destination_id = ${destinationId} AND ${dueSql(now)}
    ORDER BY external_id LIMIT ${CHUNK_USERS}`.execute(db);
  if (users.rows.length === 0) return [];
  const ids = users.rows.map((r) => r.external_id);
  // The same due-condition guards the UPDATE: under PostgreSQL's row locks a row another worker
  // claimed between our SELECT and this UPDATE no longer matches, so it is never taken twice.
  const claimed = await sql<Claimed>`
    UPDATE ledger SET lease_owner = ${workerId}, lease_until = ${now + LEASE_MS}
    WHERE destination_id = ${destinationId} AND external_id IN (${sql.join(ids)}) AND ${dueSql(now)}
    RETURNING sync_id, external_id, desired, attempts`.execute(db);
  return claimed.rows.map((r) => ({ ...r, desired: Number(r.desired), attempts: Number(r.attempts) }));
}

/** When the earliest retryable pending row of a destination is due or its lease lapses (null: none). */
export async function nextRetryAt(ctx: Context, destinationId: string): Promise<number | null> {
  const r = await sql<{ t: number | null }>`
    SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > COALESCE(next_attempt_at, 0) THEN lease_until ELSE COALESCE(next_attempt_at, 0) END) AS t
    FROM ledger WHERE destination_id = ${destinationId} AND desired <> confirmed
      AND (outcome IS NULL OR outcome = 'retry')`.execute(ctx.store.db);
  const t = r.rows[0]?.t;
  return t === null || t === undefined ? null : Number(t);
}

async function countPending(ctx: Context, destinationId: string): Promise<number> {
  const r = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM ledger WHERE destination_id = ${destinationId} AND desired <> confirmed
      AND (outcome IS NULL OR outcome = 'retry')`.execute(ctx.store.db);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * Frees the rows of a destination leased by these owners (a pass's own at its end, or a dead
 * worker's). Leases sit on claimed rows, which are pending, so the pending-rows index finds them.
 * A row another writer settled meanwhile keeps an inert lease (it is not claimable work);
 * spelling `desired <> confirmed` is what lets SQLite use the partial index instead of scanning
 * the whole ledger.
 */
export async function releaseLeases(ctx: Context, destinationId: string, owners: string[]): Promise<void> {
  await ctx.store.db
    .updateTable('ledger')
    .set({ lease_owner: null, lease_until: null })
    .where('destination_id', '=', destinationId)
    .whereRef('desired', '<>', 'confirmed')
    .where('lease_owner', 'in', owners)
    .execute();
}

/** Extends the leases this pass holds on the destination's rows (found by owner: migration 008). */
async function renewLeases(ctx: Context, destinationId: string, workerId: string): Promise<void> {
  await ctx.store.db
    .updateTable('ledger')
    .set({ lease_until: Date.now() + LEASE_MS })
    .where('lease_owner', '=', workerId)
    .where('destination_id', '=', destinationId)
    .execute();
}

type Client = ReturnType<typeof clientForDestination>;

async function confirmedTagCounts(ctx: Context, destinationId: string, users: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  // By primary key (sync, user) over the destination's syncs: the ledger has no index that
  // starts with the destination, and a full scan per claimed chunk stalls big ledgers.
  const rows = await ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('sync_id', 'in', (eb) => eb.selectFrom('syncs').select('id').where('destination_id', '=', destinationId))
    .where('external_id', 'in', users)
    .where('confirmed', '=', 1)
    .groupBy('external_id')
    .execute();
  for (const r of rows) out.set(r.external_id, Number(r.n));
  return out;
}

/**
 * One user's pending changes on this destination, coalesced into the syncTags action's requests
 * (normally one PATCH carrying every tag change), sent, and settled as ledger outcomes.
 */
async function deliverUser(
  client: Client,
  user: string,
  rows: Claimed[],
  tagKeys: Map<string, string>,
  confirmedTags: number,
  maxTagsPerUser: number,
): Promise<{ results: Outcome[]; fatal?: AmpError }> {
  const changes: TagChange[] = rows.map((r, index) => ({
    index,
    tagKey: tagKeys.get(r.sync_id)!,
    member: r.desired === 1,
    valueKind: 'presence',
    enteredAtMs: null,
  }));
  const requests = syncTags.plan({ maxTagsPerUser }, { externalId: user, confirmedTags, changes });
  const r = await syncTags.performBatch(client, user, requests);
  const results = r.settled.map(({ index, settlement }) => outcomeFor(rows[index]!, settlement));
  return r.fatal ? { results, fatal: r.fatal } : { results };
}

/** The ledger outcome of a settled change: our retry policy (attempts, backoff) applied to the action's verdict. */
function outcomeFor(r: Claimed, s: TagSettlement): Outcome {
  const base = { syncId: r.sync_id, externalId: r.external_id, sent: r.desired };
  switch (s.status) {
    case 'delivered':
      return { ...base, outcome: 'delivered', error: null, attempts: r.attempts, nextAttemptAt: null };
    case 'not_found':
      return { ...base, outcome: 'not_found', error: s.reason, attempts: r.attempts, nextAttemptAt: null };
    case 'failed':
      return { ...base, outcome: 'failed', error: s.reason, attempts: r.attempts + 1, nextAttemptAt: null };
    case 'held':
      return {
        ...base,
        outcome: 'retry',
        error: s.reason,
        attempts: r.attempts,
        nextAttemptAt: Date.now() + s.retryAfterMs,
      };
    case 'retry': {
      const attempts = r.attempts + 1;
      if (attempts >= MAX_ATTEMPTS) {
        const error = `${s.reason} (gave up after ${attempts} attempts)`;
        return { ...base, outcome: 'failed', error, attempts, nextAttemptAt: null };
      }
      const wait = retryDelayMs(DELIVERY_BACKOFF, attempts, s.retryAfterMs);
      return { ...base, outcome: 'retry', error: s.reason, attempts, nextAttemptAt: Date.now() + wait };
    }
  }
}

/**
 * Records answers and releases the leases. `confirmed` takes what OneSignal now carries.
 * When the wish changed while the request was in flight (a webhook or a run wrote `desired`
 * meanwhile), the answer's outcome is not the row's: a failure leaves the new wish's state as
 * it was; a success makes OneSignal differ from the new wish, so the row is pending again,
 * whatever the new wish's writer concluded from the old `confirmed` (it may have called the
 * row settled, "OneSignal already carries that", and the tag would have stayed for good).
 */
async function writeOutcomes(ctx: Context, workerId: string, outcomes: Outcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  await ctx.store.engine.writeLedgerOutcomes(ctx.store.db, workerId, outcomes, Date.now());
}
