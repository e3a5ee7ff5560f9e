import { createHash } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import { sql } from 'kysely';
import { z } from 'zod';
import { AmpError, toAmpError } from '../../errors';
import type { Context } from '../../store';
import { applyMembershipDelta } from '../../sync/ledger';
import { COHORT_FILE_USER_COLUMN } from './constants';

/**
 * Amplitude cohort-webhook messages: validated, stored in `webhook_inbox` before the 200 goes
 * out (Amplitude retries after ~1-2 s, so applying happens later), deduplicated on
 * (source, message_id), then applied to the ledger of every sync of the cohort.
 * Payload source: https://amplitude.com/docs/data/destination-catalog/cohort-webhooks
 */

const epochSeconds = z.union([
  z.number().finite().positive(),
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'must be epoch seconds, e.g. "1692206763"')
    .transform(Number),
]);

/** One webhook user, as stored: `user_id` (string|number) and the selected `user_properties`. */
export interface WebhookUser {
  user_id?: string | number | null;
  user_properties?: Record<string, unknown> | null;
}

/**
 * The users array is checked by hand, not by a zod element schema: a 1,000-user message must be
 * acknowledged within Amplitude's ~1 s (bench webhook_ack), and per-element zod parsing was the
 * largest cost of the acknowledgement. The rules are the ones a zod schema would state.
 */
const usersSchema = z
  .array(z.unknown(), { error: 'is required (an array of {user_id, user_properties})' })
  .max(100_000, 'at most 100000 users per message')
  .superRefine((arr, ctx) => {
    for (let i = 0; i < arr.length; i++) {
      const u = arr[i] as WebhookUser | null;
      if (u === null || typeof u !== 'object' || Array.isArray(u)) {
        ctx.addIssue({ code: 'custom', path: [i], message: 'must be an object {user_id, user_properties}' });
        return;
      }
      const id = u.user_id;
      if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number') {
        ctx.addIssue({ code: 'custom', path: [i, 'user_id'], message: 'must be a string' });
        return;
      }
      const props = u.user_properties;
      if (props !== undefined && props !== null && (typeof props !== 'object' || Array.isArray(props))) {
        ctx.addIssue({ code: 'custom', path: [i, 'user_properties'], message: 'must be an object' });
        return;
      }
    }
  })
  .transform((arr) => arr as WebhookUser[]);

export const webhookPayloadSchema = z
  .looseObject({
    cohort_id: z.union([z.string().trim().min(1, 'must not be empty'), z.number()], { error: 'is required (a string)' }).transform(String),
    cohort_name: z.string().nullish(),
    // FreeMarker templates may render booleans as strings; accept both spellings.
    in_cohort: z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')], {
      error: 'is required (true = entering, false = leaving)',
    }),
    // The Kinesis/Pub/Sub docs call it compute_time in prose, the example says computed_time: accept both.
    computed_time: epochSeconds.optional(),
    compute_time: epochSeconds.optional(),
    message_id: z.union([z.string().trim().min(1), z.number()]).transform(String).optional(),
    users: usersSchema,
  })
  .superRefine((v, ctx) => {
    if (v.computed_time === undefined && v.compute_time === undefined) {
      ctx.addIssue({ code: 'custom', path: ['computed_time'], message: 'is required (epoch seconds; compute_time is accepted too)' });
    }
  });

export type WebhookPayload = z.output<typeof webhookPayloadSchema>;

/** One line naming the offending fields, e.g. `in_cohort is required (…); users.3.user_id: …`. */
export function describePayloadIssues(issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>): string {
  return issues
    .slice(0, 5)
    .map((i) => {
      const path = i.path.map(String).join('.');
      if (!path) return i.message;
      return /^(is|must)\b/.test(i.message) ? `${path} ${i.message}` : `${path}: ${i.message}`;
    })
    .join('; ');
}

export function parseWebhookPayload(body: unknown): WebhookPayload {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AmpError('invalid_input', 'the body must be a JSON object with cohort_id, in_cohort, computed_time and users');
  }
  const r = webhookPayloadSchema.safeParse(body);
  if (!r.success) throw new AmpError('invalid_input', `invalid cohort webhook: ${describePayloadIssues(r.error.issues)}`);
  return r.data;
}

/** Without a message_id, a retry of the same payload must still dedupe: hash its content. */
function derivedMessageId(p: WebhookPayload, computedMs: number): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([p.cohort_id, p.in_cohort, computedMs, p.users]));
  return 'sha256:' + h.digest('hex').slice(0, 40);
}

const inboxInserts = new WeakMap<BetterSqlite3.Database, BetterSqlite3.Statement>();

export interface StoredWebhook {
  inboxId: number | null;
  duplicate: boolean;
  messageId: string;
}

/**
 * Stores a validated message once per (source, message_id); a repeat is reported, not stored.
 * `rawBody` is the text the payload was parsed from, stored as is; without it the payload is
 * serialised.
 */
export async function storeWebhook(ctx: Context, sourceId: string, p: WebhookPayload, rawBody?: string, nowMs = Date.now()): Promise<StoredWebhook> {
  const computedMs = Math.round((p.computed_time ?? p.compute_time ?? 0) * 1000);
  const messageId = p.message_id ?? derivedMessageId(p, computedMs);
  const values = {
    source_id: sourceId,
    message_id: messageId,
    cohort_id: p.cohort_id,
    cohort_name: p.cohort_name ?? null,
    in_cohort: p.in_cohort ? 1 : 0,
    computed_time: computedMs,
    // Mapping to external ids happens at apply time.
    body: rawBody ?? JSON.stringify(p),
    received_at: nowMs,
  };
  const h = ctx.store.sqlite;
  if (h) {
    // The acknowledgement path on SQLite goes straight to a cached prepared statement: through
    // the query builder this insert of a ~100 kB row cost several times more (bench webhook_ack).
    let stmt = inboxInserts.get(h);
    if (!stmt) {
      stmt = h.prepare(
        `INSERT INTO webhook_inbox (source_id, message_id, cohort_id, cohort_name, in_cohort, computed_time, body, received_at)
         VALUES (@source_id, @message_id, @cohort_id, @cohort_name, @in_cohort, @computed_time, @body, @received_at)
         ON CONFLICT (source_id, message_id) DO NOTHING RETURNING id`,
      );
      inboxInserts.set(h, stmt);
    }
    const r = stmt.get(values) as { id: number } | undefined;
    return r ? { inboxId: Number(r.id), duplicate: false, messageId } : { inboxId: null, duplicate: true, messageId };
  }
  const row = await ctx.store.db
    .insertInto('webhook_inbox')
    .values({ ...values, applied_at: null, error: null })
    .onConflict((oc) => oc.columns(['source_id', 'message_id']).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row ? { inboxId: Number(row.id), duplicate: false, messageId } : { inboxId: null, duplicate: true, messageId };
}

/** The external id of one webhook user under a mapping (user_id, or a selected user property). */
export function mapWebhookUser(u: WebhookUser, property: string): string | undefined {
  const v = property === COHORT_FILE_USER_COLUMN ? u.user_id : u.user_properties?.[property];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).trim();
  return s.length ? s : undefined;
}

/**
 * Applies one stored message: creates the cohort if this is the first we hear of it, maps the
 * users by the syncs' external id property and hands the delta to the ledger, which ignores
 * anything older than what it holds. Applying twice is harmless (equal timestamps re-apply the
 * same value), so a crash between the ledger write and `applied_at` only repeats work.
 */
export async function applyWebhookMessage(ctx: Context, inboxId: number | string): Promise<{ destinationIds: string[] }> {
  const db = ctx.store.db;
  const msg = await db.selectFrom('webhook_inbox').selectAll().where('id', '=', Number(inboxId)).executeTakeFirst();
  if (!msg) throw new AmpError('not_found', `no webhook message ${inboxId}`);
  if (msg.applied_at !== null) return { destinationIds: [] };
  try {
    await ensureCohort(ctx, msg.source_id, msg.cohort_id, msg.cohort_name, msg.computed_time);
    const syncs = await db
      .selectFrom('syncs')
      .select(['id', 'external_id_property'])
      .where('cohort_id', '=', msg.cohort_id)
      .where('status', '=', 'active')
      .execute();
    const destinationIds = new Set<string>();
    // Each destination names the user property that is its external id, so one message is
    // mapped once per property and applied to the syncs that use it. Each application is
    // idempotent, so a failure part-way is repaired by applying the whole message again.
    const byProperty = new Map<string, string[]>();
    for (const s of syncs) byProperty.set(s.external_id_property, [...(byProperty.get(s.external_id_property) ?? []), s.id]);
    if (byProperty.size > 0) {
      const stored = JSON.parse(msg.body) as { users: WebhookUser[] } | WebhookUser[];
      const users = Array.isArray(stored) ? stored : stored.users;
      for (const [property, syncIds] of byProperty) {
        const externalIds: string[] = [];
        for (const u of users) {
          const id = mapWebhookUser(u, property);
          if (id !== undefined) externalIds.push(id);
        }
        const r = await applyMembershipDelta(ctx, {
          cohortId: msg.cohort_id,
          inCohort: msg.in_cohort === 1,
          externalIds,
          sourceTs: msg.computed_time,
          syncIds,
        });
        r.destinationIds.forEach((d) => destinationIds.add(d));
      }
    }
    await db
      .updateTable('webhook_inbox')
      .set({ applied_at: Date.now(), error: null })
      .where('id', '=', msg.id)
      .where('applied_at', 'is', null)
      .execute();
    return { destinationIds: [...destinationIds] };
  } catch (e) {
    const err = toAmpError(e);
    await db.updateTable('webhook_inbox').set({ error: err.message.slice(0, 1000) }).where('id', '=', msg.id).execute();
    throw err;
  }
}

/** Creates a cohort first seen in a webhook; keeps name and last_computed of a known one fresh. */
async function ensureCohort(ctx: Context, sourceId: string, cohortId: string, name: string | null, computedMs: number): Promise<void> {
  const db = ctx.store.db;
  const now = Date.now();
  const existing = await db.selectFrom('cohorts').select(['source_id', 'name', 'last_computed']).where('id', '=', cohortId).executeTakeFirst();
  if (!existing) {
    await db
      .insertInto('cohorts')
      .values({ id: cohortId, source_id: sourceId, name: name ?? cohortId, origin: 'webhook', size: null, last_computed: computedMs, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    return;
  }
  if (existing.source_id !== null && existing.source_id !== sourceId) {
    throw new AmpError('conflict', `cohort ${cohortId} belongs to source ${existing.source_id}, not to ${sourceId}`);
  }
  if ((name && name !== existing.name) || (existing.last_computed ?? 0) < computedMs) {
    await db
      .updateTable('cohorts')
      .set({ name: name ?? existing.name, last_computed: Math.max(existing.last_computed ?? 0, computedMs), updated_at: now })
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
      r.destinationIds.forEach((d) => destinationIds.add(d));
      applied++;
    } catch {
      failed++;
    }
  }
  return { applied, failed, destinationIds: [...destinationIds] };
}
