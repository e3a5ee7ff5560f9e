import { type AmpError, toAmpError } from '../../errors';
import type { OneSignalClient, TagFilter } from './client';
import { MAX_PROPERTY_UPDATES_PER_REQUEST, TAG_DELETE, TAG_PRESENT } from './constants';
import { renderTagKey } from './tag-keys';

/**
 * The `syncTags` action: cohort membership to OneSignal data tags on users found by external id,
 * with every OneSignal rule here (reference onesignal-api.md §3): what a request may carry (at
 * most 100 property updates), in which order a user's changes go (deletes first when the adds
 * would pass the plan's tag budget), how a membership is written as a tag value, and what each
 * answer means for each change. The caller claims pending changes, hands one user's to `plan`,
 * sends them with `performBatch` and writes down the settlements; it knows nothing of OneSignal.
 */

/** How a member's tag value is written: "1", or the Unix time (seconds) the user entered the cohort. */
export type TagValueKind = 'presence' | 'entered_at';
export const TAG_VALUE_KINDS = ['presence', 'entered_at'] as const satisfies readonly TagValueKind[];

/** A stored tag-value setting as a kind; anything unknown reads as presence. */
export function valueKind(v: string): TagValueKind {
  return (TAG_VALUE_KINDS as readonly string[]).includes(v) ? (v as TagValueKind) : 'presence';
}

/** One tag change of one user; `index` is its position in what the caller passed. */
export interface TagChange {
  index: number;
  tagKey: string;
  /** In the cohort (the tag is set) or not (the tag is deleted). */
  member: boolean;
  valueKind: TagValueKind;
  /** When the user entered the cohort (epoch ms); the value of an `entered_at` tag. */
  enteredAtMs: number | null;
}

/** One user's pending changes on one app. */
export interface UserChanges {
  externalId: string;
  /** Tags of this destination's cohorts the user carries now, counted against the tag budget. */
  confirmedTags: number;
  changes: TagChange[];
}

export interface SyncTagsSettings {
  /** The plan's tag budget per user (DESIGN §1; OneSignal's limit depends on the plan). */
  maxTagsPerUser: number;
}

/** What happened to one change; a change of a stopped call that was never sent has none. */
export type TagSettlement =
  | { status: 'delivered' }
  /** The user does not exist in OneSignal (it never creates users for us): skipped. */
  | { status: 'not_found'; reason: string }
  /** OneSignal refuses it for good: resending cannot help. */
  | { status: 'failed'; reason: string }
  /** Throttled or cancelled before an answer: send again after `retryAfterMs`, at no cost to its retries. */
  | { status: 'held'; reason: string; retryAfterMs: number }
  /** OneSignal did not take it this time (5xx, network, timeout): send again after a backoff. */
  | { status: 'retry'; reason: string; retryAfterMs?: number };

export interface TagsBatchResult {
  /** `vendorStatus`: the HTTP status of the answer that settled the change, when one came. */
  settled: Array<{ index: number; settlement: TagSettlement; vendorStatus?: number }>;
  /** The app refuses the key itself (401/403, unknown app id): send nothing more to it. */
  fatal?: AmpError;
}

/** When a 429 came without a usable Retry-After after the client's own retries. */
const THROTTLE_HOLD_MS = 1_000;

/**
 * A user's changes as the requests to send, in order: normally one request with every change
 * (at most 100 a request). When the adds would push the user past the tag budget, the deletes go
 * first in an earlier request: OneSignal refuses new tags at the limit but accepts deletes
 * (onesignal-api.md §3.2); the client's per-user pacing spaces the two.
 */
export function plan(settings: SyncTagsSettings, user: UserChanges): TagChange[][] {
  const adds = user.changes.filter((c) => c.member);
  const deletes = user.changes.filter((c) => !c.member);
  const overBudget = user.confirmedTags + adds.length > settings.maxTagsPerUser;
  const phases = adds.length > 0 && deletes.length > 0 && overBudget ? [deletes, adds] : [user.changes];
  const requests: TagChange[][] = [];
  for (const phase of phases)
    for (let i = 0; i < phase.length; i += MAX_PROPERTY_UPDATES_PER_REQUEST)
      requests.push(phase.slice(i, i + MAX_PROPERTY_UPDATES_PER_REQUEST));
  return requests;
}

/**
 * A tag's value: "" deletes it (the documented deletion value; null is undocumented); a member's
 * is "1", or the Unix time in seconds it entered the cohort, which OneSignal's
 * `time_elapsed_gt`/`time_elapsed_lt` segment filters read.
 */
export function tagValue(change: Pick<TagChange, 'member' | 'valueKind' | 'enteredAtMs'>): string {
  if (!change.member) return TAG_DELETE;
  if (change.valueKind === 'entered_at' && change.enteredAtMs !== null)
    return String(Math.floor(change.enteredAtMs / 1000));
  return TAG_PRESENT;
}

/**
 * The filter of a cohort's segment: its members. A presence tag is "1"; an entry-time tag holds a
 * time, so membership is the tag existing (and `time_elapsed_gt`/`_lt` on the same key narrow it
 * to how long they have been members).
 */
export function segmentFilter(tagKey: string, valueKind: TagValueKind): TagFilter {
  return valueKind === 'entered_at'
    ? { field: 'tag', key: tagKey, relation: 'exists' }
    : { field: 'tag', key: tagKey, relation: '=', value: TAG_PRESENT };
}

export function tagsOf(request: TagChange[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const c of request) tags[c.tagKey] = tagValue(c);
  return tags;
}

/** What a classified OneSignal error means for the changes of the request it answered. */
export function settlementFor(e: AmpError): TagSettlement {
  if (e.kind === 'skip') return { status: 'not_found', reason: e.message };
  if (e.kind === 'terminal') return { status: 'failed', reason: e.message };
  // A 429 is the vendor pacing us, and a cancelled request was never answered: neither is a
  // fault of the change, so neither spends its retries.
  if (e.code === 'rate_limited')
    return { status: 'held', reason: e.message, retryAfterMs: e.retryAfterMs ?? THROTTLE_HOLD_MS };
  if (e.code === 'aborted') return { status: 'held', reason: e.message, retryAfterMs: 0 };
  return {
    status: 'retry',
    reason: e.message,
    ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}),
  };
}

/**
 * Sends one user's planned requests one after another and settles each change. After a failed
 * request the later ones share its settlement unsent: they would meet the same fate, or break the
 * deletes-first order. A refused key stops at once and settles nothing more.
 */
export async function performBatch(
  client: Pick<OneSignalClient, 'updateTags'>,
  externalId: string,
  requests: TagChange[][],
  /** `onRequest` hears of every request sent for `request` (a 429's repeats included). */
  opts: { signal?: AbortSignal; onRequest?: (request: TagChange[]) => void } = {},
): Promise<TagsBatchResult> {
  const settled: TagsBatchResult['settled'] = [];
  let failure: TagSettlement | undefined;
  let failureStatus: number | undefined;
  for (const request of requests) {
    if (!failure) {
      try {
        const status = await client.updateTags(externalId, tagsOf(request), {
          ...(opts.signal ? { signal: opts.signal } : {}),
          onRequest: () => opts.onRequest?.(request),
        });
        for (const c of request)
          settled.push({ index: c.index, settlement: { status: 'delivered' }, vendorStatus: status });
        continue;
      } catch (e) {
        const err = toAmpError(e);
        if (err.kind === 'destination_fatal') return { settled, fatal: err };
        failure = settlementFor(err);
        failureStatus = err.status;
      }
    }
    for (const c of request)
      settled.push({
        index: c.index,
        settlement: failure,
        ...(failureStatus !== undefined ? { vendorStatus: failureStatus } : {}),
      });
  }
  return { settled };
}

export const syncTags = {
  title: 'Sync cohort tags',
  description: 'Cohort membership as data tags on OneSignal users found by external_id; leaving deletes the tag.',
  /** The tag key of a cohort under a destination's template, refused when OneSignal would refuse it. */
  tagKey: renderTagKey,
  segmentFilter,
  tagValue,
  valueKind,
  plan,
  performBatch,
};
