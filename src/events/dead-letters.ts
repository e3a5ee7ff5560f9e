import type { Kysely } from 'kysely';
import { z } from 'zod';
import { parseWith } from '../errors';
import type { Context } from '../store';
import type { DB } from '../store/schema';
import { getStream } from './streams';

/**
 * Dead letters are outbox rows with status `dead` and a reason: events Amplitude refused
 * (400 per event, 413 alone, daily quota), or that cannot be sent at all (no user or device id).
 * Replay puts them back in the outbox as new (attempts 0, due now); the forwarder sends them with
 * their original insert_id, so a replay of something Amplitude did ingest is still deduped.
 */
export interface DeadLetterView {
  id: number;
  stream_id: string;
  event_id: string;
  kind: string;
  reason: string | null;
  attempts: number;
  received_at: number;
  event: unknown;
}

export const deadLetterFilterSchema = z.object({
  stream: z.string().trim().min(1).optional(),
  ids: z.array(z.string().trim().min(1)).optional(),
  limit: z.coerce.number().int().min(1).max(100_000).default(1_000),
});
export type DeadLetterFilter = z.input<typeof deadLetterFilterSchema>;

function parse(filter: DeadLetterFilter) {
  return parseWith(deadLetterFilterSchema, filter);
}

/**
 * All streams, spelled out: dead letters are indexed per stream (stream_events_dead), so "dead
 * letters of any stream" is a seek per stream instead of a scan of the whole outbox.
 */
function everyStream(db: Kysely<DB>) {
  return db.selectFrom('streams').select('id');
}

function base(ctx: Context, f: z.output<typeof deadLetterFilterSchema>) {
  let q = ctx.store.db.selectFrom('stream_events').where('status', '=', 'dead');
  q = f.stream ? q.where('stream_id', '=', f.stream) : q.where('stream_id', 'in', everyStream(ctx.store.db));
  if (f.ids?.length) {
    // An id is our row id (as `list` prints it) or the OneSignal event id.
    const rowIds = f.ids.filter((x) => /^\d{1,15}$/.test(x)).map(Number);
    const ids = f.ids;
    q = q.where((eb) => eb.or([eb('event_id', 'in', ids), ...(rowIds.length ? [eb('id', 'in', rowIds)] : [])]));
  }
  return q;
}

export async function listDeadLetters(ctx: Context, filter: DeadLetterFilter = {}): Promise<DeadLetterView[]> {
  const f = parse(filter);
  if (f.stream) await getStream(ctx, f.stream);
  const rows = await base(ctx, f)
    .select(['id', 'stream_id', 'event_id', 'kind', 'reason', 'attempts', 'received_at', 'payload'])
    .orderBy('id')
    .limit(f.limit)
    .execute();
  return rows.map((r) => {
    let event: unknown = r.payload;
    try {
      event = JSON.parse(r.payload);
    } catch {
      /* shown as stored */
    }
    return {
      id: Number(r.id),
      stream_id: r.stream_id,
      event_id: r.event_id,
      kind: r.kind,
      reason: r.reason,
      attempts: Number(r.attempts),
      received_at: Number(r.received_at),
      event,
    };
  });
}

/** Moves matching dead letters back to pending; returns the row ids replayed. */
export async function replayDeadLetters(
  ctx: Context,
  filter: DeadLetterFilter = {},
): Promise<{ replayed: number; ids: number[]; streams: string[] }> {
  const f = parse(filter);
  if (f.stream) await getStream(ctx, f.stream);
  return ctx.store.db.transaction().execute(async (trx) => {
    let q = trx.selectFrom('stream_events').select(['id', 'stream_id']).where('status', '=', 'dead');
    q = f.stream ? q.where('stream_id', '=', f.stream) : q.where('stream_id', 'in', everyStream(trx));
    if (f.ids?.length) {
      const rowIds = f.ids.filter((x) => /^\d{1,15}$/.test(x)).map(Number);
      const ids = f.ids;
      q = q.where((eb) => eb.or([eb('event_id', 'in', ids), ...(rowIds.length ? [eb('id', 'in', rowIds)] : [])]));
    }
    const rows = await q.orderBy('id').limit(f.limit).execute();
    const ids = rows.map((r) => Number(r.id));
    if (ids.length === 0) return { replayed: 0, ids: [], streams: [] };
    let replayed = 0;
    for (let i = 0; i < ids.length; i += 1_000) {
      const r = await trx
        .updateTable('stream_events')
        .set({
          status: 'pending',
          attempts: 0,
          next_attempt_at: Date.now(),
          reason: null,
          lease_owner: null,
          lease_until: null,
        })
        .where('id', 'in', ids.slice(i, i + 1_000))
        // Guard: only rows still dead (a concurrent replay does not double-count).
        .where('status', '=', 'dead')
        .executeTakeFirst();
      replayed += Number(r.numUpdatedRows);
    }
    return { replayed, ids, streams: [...new Set(rows.map((r) => r.stream_id))] };
  });
}
