import type { OneSignalClient } from '../connectors/onesignal/client';
import { syncTags, type TagChange, type TagSettlement, type TagValueKind } from '../connectors/onesignal/sync-tags';
import type { AmpError, Backoff } from '../errors';
import { retryDelayMs } from '../errors';
import type { Context } from '../store';
import type { ClaimedRow, ClaimedUser, DeliveryOutcome } from './delivery-queue';

/**
 * The build-requests and send stages of delivery for one claimed user: the user's rows become
 * the syncTags action's changes, the action plans and sends them, and each settlement becomes a
 * ledger outcome under our retry policy. Everything OneSignal-specific is the action's.
 */

/**
 * 10 attempts: at a 25% transient fault rate (errors + dropped connections) a record still
 * fails only with probability 0.25^10 ≈ 1e-6; the capped backoff keeps the worst case ~26 s.
 */
export const MAX_ATTEMPTS = 10;
/** Short and capped: a run with a 10% fault rate still ends in seconds. */
const DELIVERY_BACKOFF: Backoff = { baseMs: 200, capMs: 5_000 };

/** What a sync's rows become at OneSignal: its tag key and how a member's value is written. */
export interface SyncTag {
  tagKey: string;
  valueKind: TagValueKind;
}

/** The tag of every sync of one destination, reloaded when a claim brings a sync not seen yet. */
export class SyncTagBook {
  private readonly tags = new Map<string, SyncTag>();
  constructor(
    private readonly ctx: Context,
    private readonly destinationId: string,
  ) {}

  async cover(rows: ClaimedRow[]): Promise<void> {
    if (rows.every((r) => this.tags.has(r.sync_id))) return;
    const syncs = await this.ctx.store.db
      .selectFrom('syncs')
      .select(['id', 'tag_key', 'tag_value'])
      .where('destination_id', '=', this.destinationId)
      .execute();
    for (const s of syncs) this.tags.set(s.id, { tagKey: s.tag_key, valueKind: syncTags.valueKind(s.tag_value) });
  }

  of(syncId: string): SyncTag {
    const tag = this.tags.get(syncId);
    if (!tag) throw new Error(`no tag loaded for sync ${syncId}`);
    return tag;
  }
}

/** A user's requests as the action plans them; each change's `index` points into `user.rows`. */
export interface UserRequests {
  user: ClaimedUser;
  requests: TagChange[][];
}

/** Build requests: the user's claimed rows as the syncTags action's changes, planned into requests. */
export function buildRequests(user: ClaimedUser, tags: SyncTagBook, maxTagsPerUser: number): UserRequests {
  const changes: TagChange[] = user.rows.map((r, index) => ({
    index,
    ...tags.of(r.sync_id),
    member: r.desired === 1,
    enteredAtMs: r.entered_at ?? null,
  }));
  const requests = syncTags.plan(
    { maxTagsPerUser },
    { externalId: user.externalId, confirmedTags: user.confirmedTags, changes },
  );
  return { user, requests };
}

/**
 * Send: the user's requests through the action, each settlement turned into the row's outcome.
 * `charge` hears of every request sent, with the runs whose changes it carries.
 */
export async function sendUser(
  client: Pick<OneSignalClient, 'updateTags'>,
  planned: UserRequests,
  charge: (runIds: string[]) => void = () => {},
): Promise<{ outcomes: DeliveryOutcome[]; fatal?: AmpError }> {
  const { user, requests } = planned;
  const onRequest = (request: TagChange[]) =>
    charge([...new Set(request.flatMap((c) => user.rows[c.index]!.run_id ?? []))]);
  const r = await syncTags.performBatch(client, user.externalId, requests, { onRequest });
  const outcomes = r.settled.map(({ index, settlement, vendorStatus }) =>
    outcomeFor(user.rows[index]!, settlement, Date.now(), vendorStatus ?? null),
  );
  return r.fatal ? { outcomes, fatal: r.fatal } : { outcomes };
}

/** The ledger outcome of a settled change: our retry policy (attempts, backoff) applied to the action's verdict. */
export function outcomeFor(
  r: ClaimedRow,
  s: TagSettlement,
  now = Date.now(),
  status: number | null = null,
): DeliveryOutcome {
  const base = { syncId: r.sync_id, externalId: r.external_id, sent: r.desired, runId: r.run_id ?? null, status };
  switch (s.status) {
    case 'delivered':
      return { ...base, outcome: 'delivered', error: null, attempts: r.attempts, nextAttemptAt: null };
    case 'not_found':
      return { ...base, outcome: 'not_found', error: s.reason, attempts: r.attempts, nextAttemptAt: null };
    case 'failed':
      return { ...base, outcome: 'failed', error: s.reason, attempts: r.attempts + 1, nextAttemptAt: null };
    case 'held':
      return { ...base, outcome: 'retry', error: s.reason, attempts: r.attempts, nextAttemptAt: now + s.retryAfterMs };
    case 'retry': {
      const attempts = r.attempts + 1;
      if (attempts >= MAX_ATTEMPTS) {
        const error = `${s.reason} (gave up after ${attempts} attempts)`;
        return { ...base, outcome: 'failed', error, attempts, nextAttemptAt: null };
      }
      const wait = retryDelayMs(DELIVERY_BACKOFF, attempts, s.retryAfterMs);
      return { ...base, outcome: 'retry', error: s.reason, attempts, nextAttemptAt: now + wait };
    }
  }
}
