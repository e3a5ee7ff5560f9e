import { z } from 'zod';
import { parseWith } from '../errors';
import { replayDeadLetters } from '../events/dead-letters';
import { getStream } from '../events/streams';
import type { Context } from '../store';

/**
 * Dead letters (events Amplitude refused, with the reason) as a user sees them: list, and replay
 * one, some or all. Replayed events keep their insert_id, so nothing doubles in Amplitude.
 */

export const deadLetterViewSchema = z.object({
  id: z.number().int().describe('our row id (what replay takes)'),
  stream_id: z.string(),
  event_id: z.string().describe('OneSignal’s event id'),
  kind: z.string(),
  reason: z.string().nullable(),
  attempts: z.number().int(),
  received_at: z.number().int(),
  event: z.unknown().describe('the event as OneSignal sent it'),
});
export type DeadLetterView = z.infer<typeof deadLetterViewSchema>;

const idSchema = z.string().trim().min(1, 'an id is required').max(200, 'at most 200 characters');

export const deadLetterListSchema = z.object({
  stream: idSchema.optional(),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(100),
  /** Cursor: dead letters with an id below this one (the list is newest first). */
  before: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(0).optional(),
});

/** Which dead letters to replay: ids (row ids or OneSignal event ids), or all (of one stream, or of every stream). */
export const replaySchema = z
  .object({
    stream: idSchema.optional(),
    ids: z.array(idSchema).max(10_000, 'at most 10000 ids').optional(),
    all: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .refine((r) => (r.ids?.length ? !r.all : r.all === true), {
    error: 'give ids to replay some, or all: true to replay every one (of the stream, if given)',
  });
export type ReplayInput = z.input<typeof replaySchema>;

export const replayResultSchema = z.object({
  replayed: z.number().int(),
  ids: z.array(z.number().int()),
  streams: z.array(z.string()),
});
export type ReplayResult = z.infer<typeof replayResultSchema>;

/** Dead letters, newest first, of one stream or all; page with `before` (the last id seen). */
export async function listDeadLetters(ctx: Context, query: unknown = {}): Promise<DeadLetterView[]> {
  const q = parseWith(deadLetterListSchema, query ?? {});
  if (q.stream !== undefined) await getStream(ctx, q.stream);
  let rows = ctx.store.db
    .selectFrom('stream_events')
    .select(['id', 'stream_id', 'event_id', 'kind', 'reason', 'attempts', 'received_at', 'payload'])
    .where('status', '=', 'dead')
    .orderBy('id', 'desc')
    .limit(q.limit);
  // Per stream, so the dead-letter index (stream_id, status) is a seek, never an outbox scan.
  rows =
    q.stream !== undefined
      ? rows.where('stream_id', '=', q.stream)
      : rows.where('stream_id', 'in', ctx.store.db.selectFrom('streams').select('id'));
  if (q.before !== undefined) rows = rows.where('id', '<', q.before);
  return (await rows.execute()).map(({ payload, ...r }) => ({
    ...r,
    id: Number(r.id),
    attempts: Number(r.attempts),
    received_at: Number(r.received_at),
    event: parsePayload(payload),
  }));
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Replaying "all" is bounded per call so one request stays one short transaction.
const REPLAY_ALL_LIMIT = 100_000;

/** Puts dead letters back in the outbox; a worker (or `stream forward`) sends them. */
export async function replay(ctx: Context, input: unknown): Promise<ReplayResult> {
  const r = parseWith(replaySchema, input ?? {});
  return replayDeadLetters(ctx, {
    ...(r.stream ? { stream: r.stream } : {}),
    ...(r.ids?.length ? { ids: r.ids } : {}),
    limit: r.ids?.length ? r.ids.length * 2 : REPLAY_ALL_LIMIT,
  });
}
