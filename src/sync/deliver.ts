import { clientForDestination, getDestination, pauseDestination } from '../connectors/onesignal/destinations';
import { AmpError, delay } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { keepRenewing, LEASE_MS } from '../store/leases';
import { buildRequests, SyncTagBook, sendUser } from './deliver-user';
import {
  type ClaimedUser,
  claimUsers,
  countPending,
  type DeliveryLease,
  type DeliveryOutcome,
  nextRetryAt,
  releaseLeases,
  renewLeases,
  settleOutcomes,
} from './delivery-queue';
import { recordPacingHandoff, takeOverPacing } from './handoff';
import { finalizeRunsOfDestination } from './run-record';

export { nextRetryAt } from './delivery-queue';

/**
 * Delivery of one destination's pending ledger rows, as stages (DESIGN §2–3): claim a chunk of
 * users' rows with a lease (delivery-queue.ts), build each user's requests and send them through
 * the connector's syncTags action (deliver-user.ts), settle the answers as outcomes
 * (delivery-queue.ts). This file runs the stages as one pipeline and ends the pass.
 */

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
 * Outcomes are settled in batches of this many rows: one write (synchronous on SQLite, it blocks
 * the event loop) then stalls the senders for milliseconds, which the limiter's rolling window
 * makes up afterwards, instead of one long stall per chunk; still large enough to amortise the
 * per-transaction cost.
 */
const FLUSH_ROWS = 250;
/** A pass waits for retries due within this horizon instead of returning with rows pending. */
const MAX_RETRY_WAIT_MS = 60_000;

export interface DeliverOptions {
  workerId?: string;
  signal?: AbortSignal;
  /** Called after every batch of outcomes is written, with the rows resolved so far in this pass. */
  onProgress?: (p: { done: number }) => void;
}

type Client = ReturnType<typeof clientForDestination>;

/**
 * One continuous pipeline instead of claim → send → settle rounds: a round's barrier (the last
 * slow requests of a chunk, then the outcome write, then the next claim) leaves the limiter with
 * nobody waiting, and every idle millisecond beyond its small burst is send capacity lost for
 * good. Here the next chunk is claimed while users of the current one are still queued, and
 * outcomes are settled in batches behind the senders.
 */
class DeliveryPipeline {
  delivered = 0;
  done = 0;
  fatal: AmpError | undefined;
  private failure: unknown;
  private readonly queue: ClaimedUser[] = [];
  private head = 0;
  private claiming: Promise<void> | undefined;
  private exhausted = false;
  private buffer: DeliveryOutcome[] = [];
  /** Requests sent since the last settle, per run whose changes they carried. */
  private requests = new Map<string, number>();
  private readonly charge = (runIds: string[]) => {
    for (const id of runIds) this.requests.set(id, (this.requests.get(id) ?? 0) + 1);
  };
  private flushing: Promise<void> = Promise.resolve();
  /** A settle is queued and has not taken the buffer yet. */
  private settleQueued = false;

  constructor(
    private readonly ctx: Context,
    private readonly lease: DeliveryLease,
    private readonly client: Client,
    private readonly tags: SyncTagBook,
    private readonly maxTagsPerUser: number,
    private readonly opts: DeliverOptions,
  ) {}

  get queued(): number {
    return this.queue.length - this.head;
  }

  /** Sends until nothing is due (or a stop), settles what was answered; throws a write's failure. */
  async drain(): Promise<void> {
    this.exhausted = false;
    await Promise.all(Array.from({ length: CONCURRENCY }, () => this.sender()));
    await this.claiming;
    await this.flush();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Waits for a claim and a settle in flight: rows stay leased until their outcome lands. */
  async close(): Promise<void> {
    await this.claiming;
    await this.flush();
  }

  /**
   * Extends the pass's leases, in turn with the settles: both update the pass's leased rows, and
   * on PostgreSQL two statements locking the same rows in different orders deadlock.
   */
  renewLeases(): Promise<void> {
    const renewal = this.flushing.then(() => renewLeases(this.ctx, this.lease));
    this.flushing = renewal.catch(() => undefined);
    return renewal;
  }

  claimMore(): Promise<void> {
    this.claiming ??= this.claim().finally(() => {
      this.claiming = undefined;
    });
    return this.claiming;
  }

  private stopped(): boolean {
    return this.fatal !== undefined || this.failure !== undefined || this.opts.signal?.aborted === true;
  }

  private async claim(): Promise<void> {
    try {
      const users = await claimUsers(this.ctx, this.lease, CHUNK_USERS);
      if (users.length === 0) {
        this.exhausted = true;
        return;
      }
      await this.tags.cover(users.flatMap((u) => u.rows));
      if (this.head > 4_096) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      this.queue.push(...users);
    } catch (e) {
      this.failure ??= e;
    }
  }

  private async sender(): Promise<void> {
    while (!this.stopped()) {
      if (this.head >= this.queue.length) {
        if (this.exhausted) return;
        await this.claimMore();
        continue;
      }
      const user = this.queue[this.head++]!;
      if (!this.exhausted && this.queued < CLAIM_AHEAD_USERS) void this.claimMore();
      const r = await sendUser(this.client, buildRequests(user, this.tags, this.maxTagsPerUser), this.charge);
      if (r.fatal) this.fatal ??= r.fatal;
      this.buffer.push(...r.outcomes);
      if (this.buffer.length >= FLUSH_ROWS) void this.flush();
    }
  }

  /**
   * Serialised settles, in the order the answers came. A settle takes what is buffered when it
   * starts, not when it was asked for: while one is writing, answers keep arriving, and the next
   * settles them all in one transaction instead of queueing one transaction per FLUSH_ROWS (on
   * PostgreSQL each is a round trip and a commit; behind a slow one they piled up and bounded
   * the pass).
   */
  private flush(): Promise<void> {
    if (this.settleQueued || (this.buffer.length === 0 && this.requests.size === 0)) return this.flushing;
    this.settleQueued = true;
    this.flushing = this.flushing.then(() => {
      this.settleQueued = false;
      const batch = this.buffer;
      const requests = this.requests;
      this.buffer = [];
      this.requests = new Map();
      return this.settle(batch, requests);
    });
    return this.flushing;
  }

  private async settle(batch: DeliveryOutcome[], requests: Map<string, number>): Promise<void> {
    try {
      await settleOutcomes(this.ctx, this.lease, batch, requests);
    } catch (e) {
      this.failure ??= e;
      return;
    }
    for (const o of batch) {
      if (o.outcome === 'delivered') this.delivered++;
      if (o.outcome !== 'retry') this.done++;
    }
    this.opts.onProgress?.({ done: this.done });
  }
}

/**
 * Delivers every due pending ledger row of one destination: rows are claimed with a lease (two
 * workers never hold the same row), grouped per user across all syncs of the destination (one
 * PATCH carries all of a user's tag changes), sent, and `confirmed` is set only from OneSignal's
 * answer. Then the counters of runs whose rows are all resolved are finalized.
 *
 * A destination_fatal answer (401/403) pauses the destination, leaves every row pending and
 * rethrows it; callers fail their run with its message.
 */
export async function deliverDestination(
  ctx: Context,
  destinationId: string,
  opts: DeliverOptions = {},
): Promise<{ requests: number; delivered: number; pending: number }> {
  const dest = await deliverableDestination(ctx, destinationId);
  const client = clientForDestination(ctx, dest);
  const requestsBefore = client.requests;
  const lease: DeliveryLease = { destinationId, workerId: opts.workerId ?? newId('wrk') };
  const tags = new SyncTagBook(ctx, destinationId);
  const pipeline = new DeliveryPipeline(ctx, lease, client, tags, Number(dest.max_tags_per_user), opts);
  // Claimed rows stay ours while this pass lives; a dead pass's rows are free within LEASE_MS.
  const heartbeat = keepRenewing(`delivery ${destinationId}`, LEASE_MS, () => pipeline.renewLeases());
  try {
    await deliverUntilSettled(ctx, pipeline, client, destinationId, opts.signal);
  } finally {
    await heartbeat.stop();
    // Outcomes first: their UPDATE matches on our lease, which releaseLeases clears.
    await pipeline.close();
    await releaseLeases(ctx, destinationId, [lease.workerId]);
    if (client.requests > requestsBefore) await recordPacingHandoff(ctx, client.limiter);
  }
  await finalizeRunsOfDestination(ctx, destinationId);
  const pending = await countPending(ctx, destinationId);
  return { requests: client.requests - requestsBefore, delivered: pipeline.delivered, pending };
}

/** Drains the pipeline, then waits for retries due shortly, until nothing is due soon or a stop. */
async function deliverUntilSettled(
  ctx: Context,
  pipeline: DeliveryPipeline,
  client: Client,
  destinationId: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await pipeline.claimMore();
  if (pipeline.queued > 0) await takeOverPacing(ctx, client.limiter);
  while (!signal?.aborted) {
    await pipeline.drain();
    if (pipeline.fatal) {
      await pauseDestination(ctx, destinationId, pipeline.fatal.message);
      throw pipeline.fatal;
    }
    if (signal?.aborted) return;
    const next = await nextRetryAt(ctx, destinationId);
    if (next === null) return;
    const wait = next - Date.now();
    if (wait > MAX_RETRY_WAIT_MS) return;
    // Backoff wait for rows whose retry is due shortly (not a test synchronisation); a stop
    // ends the wait, and the loop's condition then ends the pass.
    if (wait > 0) await delay(wait, signal).catch(() => undefined);
  }
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
