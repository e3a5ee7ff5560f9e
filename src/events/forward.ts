import { sql } from 'kysely';
import {
  HTTP_V2_BATCH_EVENTS,
  HTTP_V2_EPS_PER_ID,
  HTTP_V2_MAX_BYTES,
  HTTP_V2_RETRY_BASE_MS,
  HTTP_V2_THROTTLE_PAUSE_MS,
} from '../connectors/amplitude/constants';
import { bodyOverhead, type HttpV2Event, sendHttpV2 } from '../connectors/amplitude/httpapi';
import { type Backoff, retryDelayMs } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { keepRenewing, LEASE_MS } from '../store/leases';
import { log } from '../telemetry/logger';
import { amplitudeBaseUrl, getStream, invalidateStreamCache } from './streams';

/**
 * The forwarder: drains one stream's outbox to Amplitude HTTP V2, exactly once.
 *
 * - Rows are claimed with a lease (a guarded UPDATE; `FOR UPDATE SKIP LOCKED` on PostgreSQL), so
 *   concurrent workers never send the same rows at the same time; the lease is renewed while the
 *   forwarder lives, and a crashed worker's rows come back within a lease.
 * - A row becomes `forwarded` only after Amplitude's 200. Everything else resends with the same
 *   insert_id and device_id, which Amplitude dedupes for 7 days: at-least-once sending plus
 *   insert_id dedupe gives exactly-once in Amplitude.
 * - 5xx / network errors never dead-letter: the row backs off (capped) and keeps retrying, because
 *   a message event lost is worse than one late, and the status reason shows the last error. (A
 *   resend more than 7 days after an ambiguous 5xx could duplicate; the counters make such a
 *   backlog visible long before.)
 */

export interface ForwardOptions {
  workerId?: string;
  signal?: AbortSignal;
  /**
   * How long claimed rows stay ours unless renewed (they are, every quarter of it, while this
   * forwarder lives); default LEASE_MS.
   */
  leaseMs?: number;
  /** Stop after this many claim rounds (default: until nothing is due). */
  maxRounds?: number;
  /**
   * Under sustained load, wait up to this long for a fuller batch: a partial batch (< 1,000
   * events) is held while its oldest event is younger than this. Default 0 (send at once); a
   * worker passes e.g. 1,000 and re-runs at `nextAttemptAt`.
   */
  lingerMs?: number;
}

export interface ForwardResult {
  forwarded: number;
  deadLettered: number;
  pending: number;
  requests: number;
  status: string;
  /** When the earliest pending row becomes due (or its lease expires); null when none is pending. */
  nextAttemptAt: number | null;
}

/** Capped at minutes, not seconds: an Amplitude outage is waited out without hammering it. */
const FORWARD_BACKOFF: Backoff = { baseMs: HTTP_V2_RETRY_BASE_MS, capMs: 5 * 60_000 };
// Every body stays strictly under 1 MB; a little margin for the JSON separators we add.
const MAX_BODY_BYTES = HTTP_V2_MAX_BYTES - 1_024;

interface Claimed {
  id: number;
  payload: string;
  attempts: number;
  bytes: number;
  ids: HttpV2Event;
}

export async function forwardStream(ctx: Context, streamId: string, opts: ForwardOptions = {}): Promise<ForwardResult> {
  const db = ctx.store.db;
  const workerId = opts.workerId ?? newId('fwd');
  const leaseMs = opts.leaseMs ?? LEASE_MS;
  const signal = opts.signal;
  const result = { forwarded: 0, deadLettered: 0, requests: 0 };
  let lingerNext: number | undefined;
  let stream = await getStream(ctx, streamId);

  if (stream.status === 'active') {
    const apiKey = ctx.secrets.decrypt(stream.amplitude_api_key_enc);
    const baseUrl = amplitudeBaseUrl(stream);
    const overhead = bodyOverhead(apiKey);
    let paused: string | undefined;

    // All updates are guarded on our lease token and `pending`, so a row whose lease expired
    // and was taken by another worker is never overwritten by us.
    const guarded = (token: string, ids: number[]) =>
      db
        .updateTable('stream_events')
        .where('id', 'in', ids)
        .where('lease_owner', '=', token)
        .where('status', '=', 'pending');

    const markForwarded = async (token: string, rows: Claimed[]) => {
      if (!rows.length) return;
      // The stream's total moves in the same transaction: it stays exact while forwarded rows are
      // pruned after the retention period.
      const n = await db.transaction().execute(async (trx) => {
        const r = await trx
          .updateTable('stream_events')
          .where(
            'id',
            'in',
            rows.map((x) => x.id),
          )
          .where('lease_owner', '=', token)
          .where('status', '=', 'pending')
          .set({ status: 'forwarded', forwarded_at: Date.now(), lease_owner: null, lease_until: null, reason: null })
          .executeTakeFirst();
        const updated = Number(r.numUpdatedRows);
        if (updated > 0) {
          await trx
            .updateTable('streams')
            .set((eb) => ({ forwarded_total: eb('forwarded_total', '+', updated) }))
            .where('id', '=', streamId)
            .execute();
        }
        return updated;
      });
      result.forwarded += n;
    };
    const markDead = async (token: string, rows: Claimed[], reasonOf: (r: Claimed) => string) => {
      const byReason = new Map<string, number[]>();
      for (const r of rows) {
        const reason = reasonOf(r).slice(0, 1_000);
        byReason.set(reason, [...(byReason.get(reason) ?? []), r.id]);
      }
      for (const [reason, ids] of byReason) {
        const r = await guarded(token, ids)
          .set({ status: 'dead', reason, lease_owner: null, lease_until: null })
          .executeTakeFirst();
        result.deadLettered += Number(r.numUpdatedRows);
      }
    };
    const release = async (token: string, rows: Claimed[]) => {
      if (rows.length)
        await guarded(
          token,
          rows.map((x) => x.id),
        )
          .set({ lease_owner: null, lease_until: null })
          .execute();
    };
    const hold = async (token: string, rows: Claimed[], reason: string) => {
      if (!rows.length) return;
      // A 429 never spends a row's retry budget (DESIGN §3): only next_attempt_at moves.
      await guarded(
        token,
        rows.map((x) => x.id),
      )
        .set({ next_attempt_at: Date.now() + HTTP_V2_THROTTLE_PAUSE_MS, lease_owner: null, lease_until: null, reason })
        .execute();
    };
    const backoff = async (token: string, rows: Claimed[], reason: string) => {
      if (!rows.length) return;
      const attempts = Math.max(...rows.map((r) => r.attempts));
      await guarded(
        token,
        rows.map((x) => x.id),
      )
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          next_attempt_at: Date.now() + retryDelayMs(FORWARD_BACKOFF, attempts + 1),
          lease_owner: null,
          lease_until: null,
          reason: reason.slice(0, 1_000),
        }))
        .execute();
    };

    /** Sends one batch and settles every row in it; returns false when the stream must stop. */
    const send = async (token: string, rows: Claimed[]): Promise<boolean> => {
      if (!rows.length) return true;
      if (signal?.aborted) {
        await release(token, rows);
        return false;
      }
      result.requests++;
      const outcome = await sendHttpV2(
        baseUrl,
        apiKey,
        rows.map((r) => r.payload),
        rows.map((r) => r.ids),
        signal ? { signal } : {},
      );
      if (signal?.aborted && outcome.kind === 'retry') {
        // Aborted mid-request: Amplitude may or may not have it; the next worker resends it
        // under the same insert_id.
        await release(token, rows);
        return false;
      }
      switch (outcome.kind) {
        case 'ok':
          await markForwarded(token, rows);
          return true;
        case 'invalid_events': {
          const reasonById = new Map(
            rows.flatMap((r, i) => (outcome.reasons.has(i) ? [[r.id, outcome.reasons.get(i)!] as const] : [])),
          );
          await markDead(
            token,
            rows.filter((r) => reasonById.has(r.id)),
            (r) => `Amplitude 400: ${reasonById.get(r.id)}`,
          );
          return send(
            token,
            rows.filter((_, i) => !outcome.reasons.has(i)),
          );
        }
        case 'too_large':
        case 'invalid_batch': {
          // Bisect to isolate what Amplitude refuses; a single event that is still refused alone
          // is a dead letter (as Amplitude's SDK drops it).
          if (rows.length === 1) {
            const why =
              outcome.kind === 'too_large'
                ? 'Amplitude 413: payload too large even as a single event'
                : `Amplitude 400: ${outcome.error}`;
            await markDead(token, rows, () => why);
            return true;
          }
          const mid = Math.ceil(rows.length / 2);
          return (await send(token, rows.slice(0, mid))) && send(token, rows.slice(mid));
        }
        case 'throttled': {
          await markDead(
            token,
            rows.filter((_, i) => outcome.quota.has(i)),
            () => 'Amplitude 429: user or device exceeded its daily event quota',
          );
          await hold(
            token,
            rows.filter((_, i) => outcome.hold.has(i)),
            `Amplitude 429: ${outcome.error}; held ${HTTP_V2_THROTTLE_PAUSE_MS / 1000} s`,
          );
          const rest = rows.filter((_, i) => !outcome.hold.has(i) && !outcome.quota.has(i));
          return send(token, rest);
        }
        case 'retry':
          await backoff(token, rows, `${outcome.error.message} (will retry)`);
          log.warn({ stream: streamId, err: outcome.error.message }, 'Amplitude send failed; backing off');
          return true;
        case 'fatal':
          paused = outcome.error;
          await release(token, rows);
          return false;
      }
    };

    /** Sends one claim's rows; false when the stream must stop. */
    const sendRound = async (token: string, claimed: Claimed[]): Promise<boolean> => {
      // Payloads Amplitude would refuse for lack of ids (e.g. a replayed id-less event) never go
      // out: one such event would make Amplitude fail the whole request.
      const sendable = claimed.filter((r) => r.ids.user_id || r.ids.device_id);
      await markDead(
        token,
        claimed.filter((r) => !(r.ids.user_id || r.ids.device_id)),
        () => 'no external_id or subscription_id: Amplitude needs a user_id or device_id',
      );
      let ok = true;
      for (const batch of batches(sendable, overhead)) {
        if (!ok) {
          await release(token, batch);
          continue;
        }
        ok = await send(token, batch);
      }
      return ok;
    };

    for (let round = 0; !signal?.aborted && (opts.maxRounds === undefined || round < opts.maxRounds); round++) {
      if (opts.lingerMs) {
        const wait = await lingerUntil(ctx, streamId, opts.lingerMs);
        if (wait !== undefined) {
          lingerNext = wait;
          break;
        }
      }
      const token = `${workerId}:${newId('lease')}`;
      const claimed = await claim(ctx, streamId, token, leaseMs);
      if (claimed.length === 0) break;
      const heartbeat = keepRenewing(`forwarding ${streamId}`, leaseMs, () =>
        db
          .updateTable('stream_events')
          .set({ lease_until: Date.now() + leaseMs })
          .where('lease_owner', '=', token)
          .where('status', '=', 'pending')
          .execute(),
      );
      try {
        if (!(await sendRound(token, claimed))) break;
      } finally {
        await heartbeat.stop();
      }
    }

    if (paused) {
      await db
        .updateTable('streams')
        .set({
          status: 'paused',
          status_reason: `${paused} — fix the stream's Amplitude settings, then "ampsignal stream resume ${streamId}"`,
        })
        .where('id', '=', streamId)
        .where('status', '=', 'active')
        .execute();
      invalidateStreamCache(streamId);
      log.error({ stream: streamId, reason: paused }, 'stream paused');
      stream = await getStream(ctx, streamId);
    }
  }

  const agg = await db
    .selectFrom('stream_events')
    .select((eb) => [
      eb.fn.countAll<number>().as('pending'),
      eb.fn
        .min(
          sql<number>`case when lease_until is not null and lease_until > next_attempt_at then lease_until else next_attempt_at end`,
        )
        .as('next'),
    ])
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  const pending = Number(agg.pending);
  return {
    ...result,
    pending,
    status: stream.status,
    nextAttemptAt: pending > 0 && agg.next !== null ? Math.max(Number(agg.next), lingerNext ?? 0) : null,
  };
}

const LINGER_FULL_BATCH = 1_000;

/** When a partial batch should wait for more events: the time to re-run, else undefined. */
async function lingerUntil(ctx: Context, streamId: string, lingerMs: number): Promise<number | undefined> {
  const now = Date.now();
  const due = await ctx.store.db
    .selectFrom('stream_events')
    .select(['received_at'])
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .orderBy('id')
    .limit(LINGER_FULL_BATCH)
    .execute();
  if (due.length === 0 || due.length >= LINGER_FULL_BATCH) return undefined;
  const oldest = Math.min(...due.map((d) => Number(d.received_at)));
  return oldest + lingerMs > now ? oldest + lingerMs : undefined;
}

/** Claims up to one request's worth of due rows for `token`, oldest first. */
async function claim(ctx: Context, streamId: string, token: string, leaseMs: number): Promise<Claimed[]> {
  const { db, dialect } = ctx.store;
  const now = Date.now();
  let due = db
    .selectFrom('stream_events')
    .select('id')
    .where('stream_id', '=', streamId)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .orderBy('id')
    .limit(HTTP_V2_BATCH_EVENTS);
  // Two workers on PostgreSQL skip each other's rows instead of queueing on their locks.
  if (dialect === 'postgres') due = due.forUpdate().skipLocked();
  const rows = await db
    .updateTable('stream_events')
    .set({ lease_owner: token, lease_until: now + leaseMs })
    .where('id', 'in', due)
    // Re-checked under the row lock: a row claimed by someone else meanwhile is not taken.
    .where('status', '=', 'pending')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .returning(['id', 'payload', 'attempts'])
    .execute();
  rows.sort((a, b) => Number(a.id) - Number(b.id));
  return rows.map((r) => {
    let ids: HttpV2Event = {};
    try {
      const p = JSON.parse(r.payload) as HttpV2Event;
      ids = { ...(p.user_id ? { user_id: p.user_id } : {}), ...(p.device_id ? { device_id: p.device_id } : {}) };
    } catch {
      /* an unreadable payload has no ids: dead-lettered below */
    }
    return {
      id: Number(r.id),
      payload: r.payload,
      attempts: Number(r.attempts),
      bytes: Buffer.byteLength(r.payload) + 1,
      ids,
    };
  });
}

/**
 * Splits claimed rows into requests of ≤ 1,999 events and < 1 MB, with at most 30 events per
 * user or device in one request: Amplitude throttles an id above 30 events/s, so a larger share
 * would get the whole id's events 429'd (first fit keeps the rest of the order).
 */
function batches(rows: Claimed[], overhead: number): Claimed[][] {
  interface Open {
    rows: Claimed[];
    bytes: number;
    perId: Map<string, number>;
  }
  const out: Open[] = [];
  const keysOf = (r: Claimed) =>
    [r.ids.user_id ? `u:${r.ids.user_id}` : '', r.ids.device_id ? `d:${r.ids.device_id}` : ''].filter(Boolean);
  let start = 0;
  for (const r of rows) {
    const keys = keysOf(r);
    let target: Open | undefined;
    for (let i = start; i < out.length; i++) {
      const b = out[i]!;
      if (b.rows.length >= HTTP_V2_BATCH_EVENTS) {
        if (i === start) start++;
        continue;
      }
      if (b.bytes + r.bytes > MAX_BODY_BYTES) continue;
      if (keys.some((k) => (b.perId.get(k) ?? 0) >= HTTP_V2_EPS_PER_ID)) continue;
      target = b;
      break;
    }
    if (!target) {
      target = { rows: [], bytes: overhead, perId: new Map() };
      out.push(target);
    }
    target.rows.push(r);
    target.bytes += r.bytes;
    for (const k of keys) target.perId.set(k, (target.perId.get(k) ?? 0) + 1);
  }
  return out.map((b) => b.rows);
}
