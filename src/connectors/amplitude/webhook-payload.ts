import { createHash } from 'node:crypto';
import { z } from 'zod';
import { AmpError } from '../../errors';
import { hasNul, NUL_PROBLEM, storable } from '../../store/text';
import { COHORT_FILE_USER_COLUMN } from './constants';

/**
 * Validation of one Amplitude cohort-webhook body, kept apart from storage so it can run on a
 * parse worker (src/server/hooks/parse-pool.ts) as well as in the request's own thread: for a
 * 1,000-user message JSON.parse is most of the acknowledgement's cost.
 * Payload source: https://amplitude.com/docs/data/destination-catalog/cohort-webhooks
 */

// Amplitude documents computed_time as epoch seconds. From 1e11 on a value cannot be seconds
// Amplitude computed (that would be the year 5138): it is milliseconds sent in the seconds field,
// and read as such. Beyond what a Date can hold (8.64e15 ms) it is not a time at all.
const MILLISECONDS_FROM = 1e11;
const MAX_TIME_MS = 8.64e15;
// Amplitude's clock and ours may disagree a little: a compute time up to this far ahead of our
// receive time is taken as it is, so deltas computed close together keep their order.
export const COMPUTED_TIME_MAX_SKEW_MS = 5 * 60_000;

/** An epoch value in seconds (or milliseconds, by magnitude) → milliseconds; undefined if it is no time. */
export function epochToMs(v: number): number | undefined {
  if (!Number.isFinite(v) || v <= 0) return undefined;
  const ms = Math.round(v < MILLISECONDS_FROM ? v * 1000 : v);
  return ms <= MAX_TIME_MS ? ms : undefined;
}

/**
 * The time the ledger orders a delta by. A delta never outranks what we will learn later, so a
 * compute time in the future (a sender's clock or unit mistake) would freeze its users: every
 * later snapshot and delta looks older and is ignored. Such a time is clamped to our receive time
 * rather than refused: the membership change itself is Amplitude's word and is kept (a 400 would
 * lose it, or, if the sender resends refused messages, block it for good); ordered at its receive
 * time it is the newest thing we know, and the next computation supersedes it.
 */
export function membershipTimeMs(computedMs: number, receivedAt: number): number {
  return computedMs > receivedAt + COMPUTED_TIME_MAX_SKEW_MS ? receivedAt : computedMs;
}

const epochSeconds = z
  .union([
    z.number().finite().positive(),
    z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?$/, 'must be epoch seconds, e.g. "1692206763"')
      .transform(Number),
  ])
  .refine((v) => epochToMs(v) !== undefined, 'is out of range: send epoch seconds, e.g. 1692206763');

/** One webhook user, as stored: `user_id` (string|number) and the selected `user_properties`. */
export interface WebhookUser {
  user_id?: string | number | null;
  user_properties?: Record<string, unknown> | null;
}

/**
 * The users array is checked by hand, after zod has checked the other fields: a 1,000-user
 * message must be acknowledged fast (bench webhook_ack). Per-element zod parsing would be the
 * largest cost of the acknowledgement, and any zod refinement or transform that receives the
 * array (or the whole payload) keeps each parsed message alive long enough to be promoted, so
 * young-generation collections copy megabytes. These are the rules a zod element schema would
 * state; the first problem is reported like a zod issue.
 */
const MAX_USERS = 100_000;

function usersProblem(users: unknown[]): { path: PropertyKey[]; message: string } | undefined {
  if (users.length > MAX_USERS) return { path: ['users'], message: `at most ${MAX_USERS} users per message` };
  for (let i = 0; i < users.length; i++) {
    const u = users[i] as WebhookUser | null;
    if (u === null || typeof u !== 'object' || Array.isArray(u))
      return { path: ['users', i], message: 'must be an object {user_id, user_properties}' };
    const id = u.user_id;
    if (id !== undefined && id !== null && typeof id !== 'string' && typeof id !== 'number')
      return { path: ['users', i, 'user_id'], message: 'must be a string' };
    if (typeof id === 'string' && hasNul(id)) return { path: ['users', i, 'user_id'], message: NUL_PROBLEM };
    const props = u.user_properties;
    if (props !== undefined && props !== null && (typeof props !== 'object' || Array.isArray(props))) {
      return { path: ['users', i, 'user_properties'], message: 'must be an object' };
    }
  }
  return undefined;
}

export const webhookPayloadSchema = z.looseObject({
  // Both are keys of the inbox's unique index, whose entries PostgreSQL caps at ~2.7 kB; Amplitude's own are a few dozen characters.
  cohort_id: z
    .union(
      [
        z
          .string()
          .trim()
          .min(1, 'must not be empty')
          .max(256, 'is longer than 256 characters')
          .refine(storable, NUL_PROBLEM),
        z.number(),
      ],
      { error: 'is required (a string)' },
    )
    .transform(String),
  cohort_name: z.string().max(1000, 'is longer than 1000 characters').refine(storable, NUL_PROBLEM).nullish(),
  // FreeMarker templates may render booleans as strings; accept both spellings.
  in_cohort: z.union([z.boolean(), z.enum(['true', 'false']).transform((s) => s === 'true')], {
    error: 'is required (true = entering, false = leaving)',
  }),
  // The Kinesis/Pub/Sub docs call it compute_time in prose, the example says computed_time: accept both.
  computed_time: epochSeconds.optional(),
  compute_time: epochSeconds.optional(),
  message_id: z
    .union([
      z.string().trim().min(1).max(512, 'is longer than 512 characters').refine(storable, NUL_PROBLEM),
      z.number(),
    ])
    .transform(String)
    .optional(),
  users: z.custom<unknown[]>((v) => Array.isArray(v), {
    error: 'is required (an array of {user_id, user_properties})',
  }),
});

export type WebhookPayload = z.output<typeof webhookPayloadSchema> & { users: WebhookUser[] };

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
    throw new AmpError(
      'invalid_input',
      'the body must be a JSON object with cohort_id, in_cohort, computed_time and users',
    );
  }
  const r = webhookPayloadSchema.safeParse(body);
  if (!r.success)
    throw new AmpError('invalid_input', `invalid cohort webhook: ${describePayloadIssues(r.error.issues)}`);
  const issues = [];
  if (r.data.computed_time === undefined && r.data.compute_time === undefined) {
    issues.push({ path: ['computed_time'], message: 'is required (epoch seconds; compute_time is accepted too)' });
  }
  const users = usersProblem(r.data.users);
  if (users) issues.push(users);
  if (issues.length > 0)
    throw new AmpError('invalid_input', `invalid cohort webhook: ${describePayloadIssues(issues)}`);
  return r.data as WebhookPayload;
}

/** Without a message_id, a retry of the same payload must still dedupe: hash its content. */
function derivedMessageId(p: WebhookPayload, computedMs: number): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([p.cohort_id, p.in_cohort, computedMs, p.users]));
  return `sha256:${h.digest('hex').slice(0, 40)}`;
}

/** What storing and acknowledging a message need of it: everything but the users themselves. */
export interface WebhookSummary {
  cohort_id: string;
  cohort_name: string | null;
  in_cohort: boolean;
  computed_ms: number;
  message_id: string;
  users: number;
}

/** `receivedAt`: when the request arrived, the bound of a believable compute time (see membershipTimeMs). */
export function summarizeWebhook(p: WebhookPayload, receivedAt: number): WebhookSummary {
  // Validated by the schema: a time, so never undefined here.
  const computedMs = epochToMs(p.computed_time ?? p.compute_time ?? 0) ?? receivedAt;
  return {
    cohort_id: p.cohort_id,
    cohort_name: p.cohort_name ?? null,
    in_cohort: p.in_cohort,
    computed_ms: membershipTimeMs(computedMs, receivedAt),
    // From the time as sent, not as clamped: a resend must derive the same id.
    message_id: p.message_id ?? derivedMessageId(p, computedMs),
    users: p.users.length,
  };
}

// Keys that would set an object's prototype once the payload is copied key by key (zod copies a
// loose object's keys): refused, as fastify's secure-json-parse does. Only a body that can spell
// one (the key itself, or any \u escape) pays for the reviver.
const MAY_POISON = /__proto__|constructor|\\u/;
class PoisonedKey extends Error {}
function refusePoisonedKeys(key: string, value: unknown): unknown {
  if (
    key === '__proto__' ||
    (key === 'constructor' && typeof value === 'object' && value !== null && Object.hasOwn(value, 'prototype'))
  ) {
    throw new PoisonedKey(key);
  }
  return value;
}

/** A webhook body's text → its summary, or an `invalid_input` AmpError naming the problem. */
export function checkWebhookBody(text: string, receivedAt = Date.now()): WebhookSummary {
  let body: unknown;
  try {
    body = MAY_POISON.test(text) ? JSON.parse(text, refusePoisonedKeys) : JSON.parse(text);
  } catch (e) {
    if (e instanceof PoisonedKey)
      throw new AmpError(
        'invalid_input',
        `the body has a forbidden key "${e.message}" (it could change object prototypes)`,
      );
    throw new AmpError('invalid_input', `the body is not valid JSON: ${(e as Error).message}`);
  }
  return summarizeWebhook(parseWebhookPayload(body), receivedAt);
}

/** The external id of one webhook user under a mapping (user_id, or a selected user property). */
export function mapWebhookUser(u: WebhookUser, property: string): string | undefined {
  const v = property === COHORT_FILE_USER_COLUMN ? u.user_id : u.user_properties?.[property];
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).trim();
  // A user property is not checked at the edge (any property may be the mapping): one the
  // database cannot store is no external id, like a blank one.
  return s.length && !hasNul(s) ? s : undefined;
}
