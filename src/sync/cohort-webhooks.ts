import { inflateRawSync } from 'node:zlib';
import { type Selectable, sql } from 'kysely';
import {
  mapWebhookUser,
  membershipTimeMs,
  type WebhookSummary,
  type WebhookUser,
} from '../connectors/amplitude/webhook-payload';
import { AmpError, toAmpError } from '../errors';
import type { Context, InboxValues } from '../store';
import type { WebhookInboxTable } from '../store/schema';
import { applyMembershipDelta } from './ledger';

/**
 * Amplitude cohort-webhook messages: validated, stored in `webhook_inbox` before the 200 goes
 * out (Amplitude retries after ~1-2 s, so applying happens later), deduplicated on
 * (source, message_id), then applied to the ledger of every sync of the cohort.
 * Validation of the payload and the user mapping: connectors/amplitude/webhook-payload.ts.
 */

export interface StoredWebhook {
  inboxId: number | null;
  duplicate: boolean;
  messageId: string;
}

/** What the inbox keeps of a message's text: as is, or raw-deflated (see migration 007). */
export type StoredBody = { text: string } | { deflated: Buffer };

/** Stores a validated message once per (source, message_id); a repeat is reported, not stored. */
export async function storeWebhook(
  ctx: Context,
  sourceId: string,
  m: WebhookSummary,
  body: StoredBody,
  nowMs = Date.now(),
): Promise<StoredWebhook> {
  const messageId = m.message_id;
  const values: InboxValues = {
    source_id: sourceId,
    message_id: messageId,
    cohort_id: m.cohort_id,
    cohort_name: m.cohort_name,
    in_cohort: m.in_cohort ? 1 : 0,
    computed_time: m.computed_ms,
    // Mapping to external ids happens at apply time.
    body: 'text' in body ? body.text : '',
    body_deflated: 'deflated' in body ? body.deflated : null,
    received_at: nowMs,
  };
  const inboxId = await ctx.store.engine.insertInboxMessage(values);
  return inboxId === null ? { inboxId: null, duplicate: true, messageId } : { inboxId, duplicate: false, messageId };
}

/**
 * Whether a source's webhook may change this cohort: one not known yet (it becomes the source's)
 * or one of its own; never a file-imported cohort (no source) nor another source's.
 */
export async function cohortWritableBy(ctx: Context, sourceId: string, cohortId: string): Promise<boolean> {
  const row = await ctx.store.db
    .selectFrom('cohorts')
    .select('source_id')
    .where('id', '=', cohortId)
    .executeTakeFirst();
  return !row || row.source_id === sourceId;
}

export function notYourCohort(sourceId: string, cohortId: string): AmpError {
  // Whose cohort it is stays unsaid: the caller holds only this source's secret.
  return new AmpError(
    'forbidden',
    `cohort ${cohortId} is not a cohort of source ${sourceId} (it was imported from a file or belongs to another source); a source's webhook may change only its own cohorts`,
  );
}

/**
 * Applies one stored message: creates the cohort if this is the first we hear of it, maps the
 * users by the syncs' external id property and hands the delta to the ledger, which ignores
 * anything older than what it holds. Applying twice is harmless (equal timestamps re-apply the
 * same value), so a crash between the ledger write and `applied_at` only repeats work.
 */
export async function applyWebhookMessage(
  ctx: Context,
  inboxId: number | string,
): Promise<{ destinationIds: string[] }> {
  const db = ctx.store.db;
  const msg = await db.selectFrom('webhook_inbox').selectAll().where('id', '=', Number(inboxId)).executeTakeFirst();
  if (!msg) throw new AmpError('not_found', `no webhook message ${inboxId}`);
  if (msg.applied_at !== null) return { destinationIds: [] };
  try {
    const destinationIds = await applyToLedger(ctx, msg);
    await db
      .updateTable('webhook_inbox')
      .set({ applied_at: Date.now(), error: null })
      .where('id', '=', msg.id)
      .where('applied_at', 'is', null)
      .execute();
    return { destinationIds };
  } catch (e) {
    const err = toAmpError(e);
    await db
      .updateTable('webhook_inbox')
      .set({ error: err.message.slice(0, 1000) })
      .where('id', '=', msg.id)
      .execute();
    throw err;
  }
}

/**
 * The message's delta on the ledger of every active sync of its cohort; the destinations with
 * changes. Each destination names the user property that is its external id, so one message is
 * mapped once per property and applied to the syncs that use it. Each application is
 * idempotent, so a failure part-way is repaired by applying the whole message again.
 */
async function applyToLedger(ctx: Context, msg: Selectable<WebhookInboxTable>): Promise<string[]> {
  // The receiver clamps already; a message stored before it did is clamped here the same way.
  const computedMs = membershipTimeMs(Number(msg.computed_time), Number(msg.received_at));
  await ensureCohort(ctx, msg.source_id, msg.cohort_id, msg.cohort_name, computedMs);
  const byProperty = await syncsByProperty(ctx, msg.cohort_id);
  if (byProperty.size === 0) return [];
  const users = storedUsers(msg);
  const destinationIds = new Set<string>();
  for (const [property, syncIds] of byProperty) {
    const externalIds = users.flatMap((u) => mapWebhookUser(u, property) ?? []);
    const r = await applyMembershipDelta(ctx, {
      cohortId: msg.cohort_id,
      inCohort: msg.in_cohort === 1,
      externalIds,
      sourceTs: computedMs,
      syncIds,
      messageId: msg.message_id,
    });
    for (const d of r.destinationIds) destinationIds.add(d);
  }
  return [...destinationIds];
}

/** The cohort's active syncs, grouped by the external id property of their destination. */
async function syncsByProperty(ctx: Context, cohortId: string): Promise<Map<string, string[]>> {
  const syncs = await ctx.store.db
    .selectFrom('syncs')
    .select(['id', 'external_id_property'])
    .where('cohort_id', '=', cohortId)
    .where('status', '=', 'active')
    .execute();
  const byProperty = new Map<string, string[]>();
  for (const s of syncs) {
    const ids = byProperty.get(s.external_id_property);
    if (ids) ids.push(s.id);
    else byProperty.set(s.external_id_property, [s.id]);
  }
  return byProperty;
}

/** The users of a stored message (inflated when kept deflated; a bare array before migration 004). */
function storedUsers(msg: Selectable<WebhookInboxTable>): WebhookUser[] {
  const text = msg.body_deflated ? inflateRawSync(msg.body_deflated).toString('utf8') : msg.body;
  const stored = JSON.parse(text) as { users: WebhookUser[] } | WebhookUser[];
  return Array.isArray(stored) ? stored : stored.users;
}

/**
 * Creates a cohort first seen in a webhook; keeps name and last_computed of a known one fresh.
 * The receiver refused messages for cohorts that are not the source's; checked again here, after
 * the insert, for messages stored before such a cohort appeared.
 */
async function ensureCohort(
  ctx: Context,
  sourceId: string,
  cohortId: string,
  name: string | null,
  computedMs: number,
): Promise<void> {
  const db = ctx.store.db;
  const now = Date.now();
  const created = await db
    .insertInto('cohorts')
    .values({
      id: cohortId,
      source_id: sourceId,
      name: name ?? cohortId,
      origin: 'webhook',
      size: null,
      last_computed: computedMs,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (created) return;
  const existing = await db
    .selectFrom('cohorts')
    .select(['source_id', 'name', 'last_computed'])
    .where('id', '=', cohortId)
    .executeTakeFirstOrThrow();
  if (existing.source_id !== sourceId) throw notYourCohort(sourceId, cohortId);
  if ((name && name !== existing.name) || Number(existing.last_computed ?? 0) < computedMs) {
    await db
      .updateTable('cohorts')
      .set({
        name: name ?? existing.name,
        last_computed: Math.max(Number(existing.last_computed ?? 0), computedMs),
        updated_at: now,
      })
      .where('id', '=', cohortId)
      .execute();
  }
}

/** Applies every stored, unapplied message in arrival order (tests and the embedded mode). */
export async function applyPendingWebhooks(
  ctx: Context,
  opts: { sourceId?: string; limit?: number } = {},
): Promise<{ applied: number; failed: number; destinationIds: string[] }> {
  // Messages that never failed first: one that keeps failing (e.g. a cohort with mixed id
  // mappings) must not starve the ones behind it when the sweep runs with a limit.
  let q = ctx.store.db
    .selectFrom('webhook_inbox')
    .select('id')
    .where('applied_at', 'is', null)
    .orderBy(sql`CASE WHEN error IS NULL THEN 0 ELSE 1 END`)
    .orderBy('id')
    .limit(opts.limit ?? 10_000);
  if (opts.sourceId) q = q.where('source_id', '=', opts.sourceId);
  const ids = await q.execute();
  const destinationIds = new Set<string>();
  let applied = 0;
  let failed = 0;
  for (const { id } of ids) {
    try {
      const r = await applyWebhookMessage(ctx, id);
      for (const d of r.destinationIds) destinationIds.add(d);
      applied++;
    } catch {
      failed++;
    }
  }
  return { applied, failed, destinationIds: [...destinationIds] };
}

/** When the cohort's last webhook message arrived (null: none kept), by the (cohort, received_at) index. */
export async function lastWebhookAt(ctx: Context, cohortId: string): Promise<number | null> {
  const r = await ctx.store.db
    .selectFrom('webhook_inbox')
    .select((eb) => eb.fn.max('received_at').as('at'))
    .where('cohort_id', '=', cohortId)
    .executeTakeFirst();
  return r?.at === null || r?.at === undefined ? null : Number(r.at);
}
