import { type SendEventsSettings, sendEvents } from '../connectors/amplitude/send-events';
import { newId } from '../ids';
import type { Context } from '../store';
import { LEASE_MS } from '../store/leases';
import type { StreamsTable } from '../store/schema';
import { log } from '../telemetry/logger';
import {
  type ClaimedEvent,
  claimEvents,
  type ForwardTally,
  lingerUntil,
  type OutboxLease,
  outboxState,
  releaseEvents,
  renewEventLease,
  settleEvents,
} from './outbox';
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

/** How a pass of rounds ended: waiting for a fuller batch, or stopped by the destination or a signal. */
interface PassEnd {
  lingerUntil?: number;
  fatal?: string;
}

/**
 * Forwards one stream's due events in rounds (claim → build requests → send → settle) until
 * nothing is due, the destination refuses the stream (it is paused) or the signal stops it.
 */
export async function forwardStream(ctx: Context, streamId: string, opts: ForwardOptions = {}): Promise<ForwardResult> {
  const stream = await getStream(ctx, streamId);
  const tally: ForwardTally = { forwarded: 0, deadLettered: 0, requests: 0 };
  const end = stream.status === 'active' ? await forwardRounds(ctx, stream, opts, tally) : {};
  const status = end.fatal ? await pauseStream(ctx, streamId, end.fatal) : stream.status;
  const outbox = await outboxState(ctx, streamId);
  const next = outbox.nextAttemptAt === null ? null : Math.max(outbox.nextAttemptAt, end.lingerUntil ?? 0);
  return { ...tally, pending: outbox.pending, status, nextAttemptAt: next };
}

async function forwardRounds(
  ctx: Context,
  stream: StreamsTable,
  opts: ForwardOptions,
  tally: ForwardTally,
): Promise<PassEnd> {
  const settings: SendEventsSettings = {
    baseUrl: amplitudeBaseUrl(stream),
    apiKey: ctx.secrets.decrypt(stream.amplitude_api_key_enc),
  };
  const workerId = opts.workerId ?? newId('fwd');
  for (let round = 0; !opts.signal?.aborted && round < (opts.maxRounds ?? Number.POSITIVE_INFINITY); round++) {
    const linger = opts.lingerMs ? await lingerUntil(ctx, stream.id, opts.lingerMs) : undefined;
    if (linger !== undefined) return { lingerUntil: linger };
    const lease = { streamId: stream.id, token: `${workerId}:${newId('lease')}`, ms: opts.leaseMs ?? LEASE_MS };
    const claimed = await claimEvents(ctx, lease, sendEvents.maxEvents);
    if (claimed.length === 0) return {};
    const heartbeat = renewEventLease(ctx, lease);
    try {
      const r = await forwardClaimed(ctx, lease, settings, claimed, tally, opts.signal);
      if (r.stopped) return r.fatal ? { fatal: r.fatal } : {};
    } finally {
      await heartbeat.stop();
    }
  }
  return {};
}

/**
 * One round: builds the requests of the claimed events, sends them one after another and
 * settles each answer as it comes. A stop (a signal, or the destination refusing the stream)
 * gives the events not settled yet back at once.
 */
export async function forwardClaimed(
  ctx: Context,
  lease: OutboxLease,
  settings: SendEventsSettings,
  claimed: ClaimedEvent[],
  tally: ForwardTally,
  signal?: AbortSignal,
): Promise<{ stopped: boolean; fatal?: string }> {
  const { requests, refused } = sendEvents.plan(
    settings,
    claimed.map((c) => c.payload),
  );
  const dead = refused.map(({ index, reason }) => ({ index, settlement: { status: 'dead' as const, reason } }));
  await settleEvents(ctx, lease, claimed, dead, tally);
  for (const request of requests) {
    const r = await sendEvents.performBatch(settings, request, signal ? { signal } : {});
    tally.requests += r.requests;
    await settleEvents(ctx, lease, claimed, r.settled, tally);
    if (r.stopped) {
      await releaseEvents(ctx, lease, claimed);
      return { stopped: true, ...(r.fatal ? { fatal: r.fatal } : {}) };
    }
  }
  return { stopped: false };
}

/** Stops a stream the destination refuses; a person fixes its settings and resumes it. */
async function pauseStream(ctx: Context, streamId: string, reason: string): Promise<string> {
  await ctx.store.db
    .updateTable('streams')
    .set({
      status: 'paused',
      status_reason: `${reason} — fix the stream's Amplitude settings, then "ampsignal stream resume ${streamId}"`,
    })
    .where('id', '=', streamId)
    .where('status', '=', 'active')
    .execute();
  invalidateStreamCache(streamId);
  log.error({ stream: streamId, reason }, 'stream paused');
  return (await getStream(ctx, streamId)).status;
}
