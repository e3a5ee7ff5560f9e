import { sql } from 'kysely';
import { z } from 'zod';
import { type AmplitudeRegion, HTTP_API_URL } from '../connectors/amplitude/constants';
import { AmpError } from '../errors';
import { newId, newSecret } from '../ids';
import type { Context } from '../store';
import type { StreamsTable } from '../store/schema';
import { NUL_PROBLEM, storable } from '../store/text';

/** A stream: one OneSignal → Amplitude event pipe (DESIGN §1, §5). */

export const streamInputSchema = z.object({
  name: z.string({ error: 'is required' }).trim().min(1, 'is required').max(200).refine(storable, NUL_PROBLEM),
  amplitudeApiKey: z
    .string({ error: 'is required (the Amplitude project API key)' })
    .trim()
    .min(1, 'is required')
    .max(200),
  region: z.enum(['us', 'eu'], { error: 'must be us or eu' }).default('us'),
  amplitudeUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  eventNames: z.record(z.string().min(1), z.string().trim().min(1).max(1024)).optional(),
});
export type StreamInput = z.input<typeof streamInputSchema>;

export function hookPath(streamId: string): string {
  return `/hooks/onesignal/events/${streamId}`;
}

/** Base URL for HTTP V2: the override (emulator, proxy), else the region's host. */
export function amplitudeBaseUrl(row: Pick<StreamsTable, 'amplitude_url' | 'region'>): string {
  return row.amplitude_url ?? HTTP_API_URL[(row.region as AmplitudeRegion) ?? 'us'] ?? HTTP_API_URL.us;
}

export function parseEventNames(row: Pick<StreamsTable, 'event_names'>): Record<string, string> | null {
  if (!row.event_names) return null;
  try {
    return JSON.parse(row.event_names) as Record<string, string>;
  } catch {
    return null;
  }
}

export interface StreamCounters {
  received: number;
  duplicates: number;
  forwarded: number;
  dead_lettered: number;
  pending: number;
}

/** Public JSON of a stream: never the API key; the webhook secret only when asked (at creation). */
export function streamView(
  row: StreamsTable,
  extra: { counters?: StreamCounters; webhookSecret?: string } = {},
): Record<string, unknown> {
  return {
    id: row.id,
    name: row.name,
    region: row.region,
    amplitude_url: amplitudeBaseUrl(row),
    path: hookPath(row.id),
    status: row.status,
    status_reason: row.status_reason,
    event_names: parseEventNames(row) ?? {},
    created_at: row.created_at,
    ...(extra.webhookSecret ? { webhook_secret: extra.webhookSecret } : {}),
    ...(extra.counters ?? {}),
  };
}

export async function createStream(
  ctx: Context,
  input: StreamInput,
): Promise<{ row: StreamsTable; webhookSecret: string }> {
  const parsed = streamInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new AmpError(
      'invalid_input',
      parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; '),
    );
  }
  const v = parsed.data;
  const existing = await ctx.store.db.selectFrom('streams').select('id').where('name', '=', v.name).executeTakeFirst();
  if (existing) throw new AmpError('conflict', `a stream named "${v.name}" already exists (${existing.id})`);
  const webhookSecret = newSecret();
  const row: StreamsTable = {
    id: newId('str'),
    name: v.name,
    amplitude_api_key_enc: ctx.secrets.encrypt(v.amplitudeApiKey),
    region: v.region,
    amplitude_url: v.amplitudeUrl ?? null,
    webhook_secret_enc: ctx.secrets.encrypt(webhookSecret),
    event_names: v.eventNames && Object.keys(v.eventNames).length ? JSON.stringify(v.eventNames) : null,
    status: 'active',
    status_reason: null,
    duplicates: 0,
    forwarded_total: 0,
    created_at: Date.now(),
  };
  try {
    await ctx.store.db.insertInto('streams').values(row).execute();
  } catch (e) {
    // A concurrent add with the same name loses on the unique index.
    if (/unique/i.test((e as Error).message))
      throw new AmpError('conflict', `a stream named "${v.name}" already exists`);
    throw e;
  }
  return { row, webhookSecret };
}

export async function getStream(ctx: Context, id: string): Promise<StreamsTable> {
  const row = await ctx.store.db.selectFrom('streams').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `no stream with id ${id} (see "ampsignal stream list")`);
  return row;
}

export async function listStreams(ctx: Context): Promise<StreamsTable[]> {
  return ctx.store.db.selectFrom('streams').selectAll().orderBy('created_at').orderBy('id').execute();
}

/**
 * Outbox rows of one status per stream (all streams, or those given): pending and dead through
 * their partial indexes, forwarded only since a time (the forwarded-by-time index); how many were
 * ever forwarded is `streams.forwarded_total`, kept by the forwarder, since forwarded rows are
 * pruned after the retention period.
 */
export async function countOutbox(
  ctx: Context,
  q: { status: 'pending' | 'dead' } | { status: 'forwarded'; since: number },
  streamIds?: string[],
): Promise<Map<string, number>> {
  let c = ctx.store.db
    .selectFrom('stream_events')
    .select(['stream_id', (eb) => eb.fn.countAll().as('n')])
    .where('status', '=', q.status);
  if (streamIds) c = c.where('stream_id', 'in', streamIds.length ? streamIds : ['']);
  if (q.status === 'forwarded') c = c.where('forwarded_at', '>=', q.since);
  const rows = await c.groupBy('stream_id').execute();
  return new Map(rows.map((r) => [r.stream_id, Number(r.n)]));
}

export async function streamCounters(ctx: Context, id: string): Promise<StreamCounters> {
  const [row, pendingBy, deadBy] = await Promise.all([
    getStream(ctx, id),
    countOutbox(ctx, { status: 'pending' }, [id]),
    countOutbox(ctx, { status: 'dead' }, [id]),
  ]);
  const pending = pendingBy.get(id) ?? 0;
  const dead = deadBy.get(id) ?? 0;
  const forwarded = Number(row.forwarded_total);
  return {
    received: forwarded + dead + pending,
    duplicates: Number(row.duplicates),
    forwarded,
    dead_lettered: dead,
    pending,
  };
}

/** Pauses forwarding (receiving continues: events wait in the outbox). Guarded on the old state. */
export async function pauseStream(ctx: Context, id: string, reason: string): Promise<void> {
  await getStream(ctx, id);
  await ctx.store.db
    .updateTable('streams')
    .set({ status: 'paused', status_reason: reason })
    .where('id', '=', id)
    .execute();
  invalidateStreamCache(id);
}

export async function resumeStream(ctx: Context, id: string): Promise<void> {
  await getStream(ctx, id);
  await ctx.store.db
    .updateTable('streams')
    .set({ status: 'active', status_reason: null })
    .where('id', '=', id)
    .execute();
  invalidateStreamCache(id);
}

export interface CachedStream {
  row: StreamsTable;
  webhookSecret: string;
  eventNames: Record<string, string> | null;
  expires: number;
}

// The receiver checks the secret on every request; decrypting it (and reading the row) each
// time would dominate the ingest cost. A few seconds of staleness in another process only
// delays a pause or rename there; this process invalidates at once.
const STREAM_CACHE_MS = 5_000;
const streamCache = new Map<string, CachedStream>();

function cacheKey(ctx: Context, id: string): string {
  return `${ctx.store.displayUrl}\u0000${id}`;
}

/** The cached stream if it is fresh, without touching the database (the receiver's fast path). */
export function cachedStreamNow(ctx: Context, id: string): CachedStream | undefined {
  const hit = streamCache.get(cacheKey(ctx, id));
  return hit && hit.expires > Date.now() ? hit : undefined;
}

export async function cachedStream(ctx: Context, id: string): Promise<CachedStream | undefined> {
  const hit = cachedStreamNow(ctx, id);
  if (hit) return hit;
  const key = cacheKey(ctx, id);
  const now = Date.now();
  const row = await ctx.store.db.selectFrom('streams').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) {
    streamCache.delete(key);
    return undefined;
  }
  const entry: CachedStream = {
    row,
    webhookSecret: ctx.secrets.decrypt(row.webhook_secret_enc),
    eventNames: parseEventNames(row),
    expires: now + STREAM_CACHE_MS,
  };
  if (streamCache.size > 10_000) streamCache.clear();
  streamCache.set(key, entry);
  return entry;
}

export function invalidateStreamCache(id: string): void {
  for (const k of streamCache.keys()) if (k.endsWith(`\u0000${id}`)) streamCache.delete(k);
}

export interface StreamActivity {
  /** Start of each minute (epoch ms), oldest first; the last one is the current minute. */
  minutes: number[];
  received: number[];
  forwarded: number[];
}

const MINUTE_MS = 60_000;

/**
 * Events received and forwarded per minute over the last `minutes` minutes. Each count reads
 * one status through its partial index (pending, dead, and forwarded by forwarded_at), so no
 * index on received_at is needed on the ingest path: an event received in the window is
 * pending, dead, or forwarded since then.
 */
export async function streamActivity(
  ctx: Context,
  id: string,
  opts: { minutes?: number; now?: number } = {},
): Promise<StreamActivity> {
  const span = opts.minutes ?? 60;
  const first = Math.floor((opts.now ?? Date.now()) / MINUTE_MS) - span + 1;
  const since = first * MINUTE_MS;
  const db = ctx.store.db;
  const perMinute = (column: 'received_at' | 'forwarded_at') => sql<number>`${sql.ref(column)} / ${sql.lit(MINUTE_MS)}`;
  const received = (status: 'pending' | 'dead' | 'forwarded') => {
    let q = db
      .selectFrom('stream_events')
      .select([perMinute('received_at').as('minute'), (eb) => eb.fn.countAll().as('n')])
      .where('stream_id', '=', id)
      .where('status', '=', status)
      .where('received_at', '>=', since);
    if (status === 'forwarded') q = q.where('forwarded_at', '>=', since);
    return q.groupBy(perMinute('received_at')).execute();
  };
  const forwarded = db
    .selectFrom('stream_events')
    .select([perMinute('forwarded_at').as('minute'), (eb) => eb.fn.countAll().as('n')])
    .where('stream_id', '=', id)
    .where('status', '=', 'forwarded')
    .where('forwarded_at', '>=', since)
    .groupBy(perMinute('forwarded_at'))
    .execute();
  const [pending, dead, fwdReceived, fwd] = await Promise.all([
    received('pending'),
    received('dead'),
    received('forwarded'),
    forwarded,
  ]);
  const bucket = (rows: Array<{ minute: unknown; n: unknown }>[]) => {
    const out = new Array<number>(span).fill(0);
    for (const r of rows.flat()) {
      const i = Number(r.minute) - first;
      if (i >= 0 && i < span) out[i]! += Number(r.n);
    }
    return out;
  };
  return {
    minutes: Array.from({ length: span }, (_, i) => (first + i) * MINUTE_MS),
    received: bucket([pending, dead, fwdReceived]),
    forwarded: bucket([fwd]),
  };
}
