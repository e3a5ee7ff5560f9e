import { z } from 'zod';
import { checkHttpV2Key } from '../connectors/amplitude/httpapi';
import { AmpError, parseWith } from '../errors';
import {
  amplitudeBaseUrl,
  countOutbox,
  createStream,
  streamInputSchema as engineStreamSchema,
  getStream,
  hookPath,
  invalidateStreamCache,
  parseEventNames,
  pauseStream as pauseStreamRow,
  resumeStream as resumeStreamRow,
} from '../events/streams';
import type { Context } from '../store';
import type { StreamsTable } from '../store/schema';

/**
 * Event streams (OneSignal → Amplitude) as a user sees them: add, list, show, update, pause,
 * resume (after checking the Amplitude key), delete. Every shell calls these; input is
 * snake_case JSON as the API documents it.
 */

const e = engineStreamSchema.shape;

export const streamInputSchema = z.object({
  name: e.name,
  amplitude_api_key: e.amplitudeApiKey,
  region: e.region,
  amplitude_url: e.amplitudeUrl,
  event_names: e.eventNames,
});
export type StreamInput = z.input<typeof streamInputSchema>;

export const streamUpdateSchema = z.strictObject(
  {
    name: e.name.optional(),
    amplitude_api_key: e.amplitudeApiKey.optional(),
    region: e.region.unwrap().optional(),
    amplitude_url: e.amplitudeUrl.unwrap().nullable().optional(),
    event_names: e.eventNames,
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `cannot be changed: ${i.keys.join(', ')}` : undefined) },
);
export type StreamUpdate = z.input<typeof streamUpdateSchema>;

export const streamViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  region: z.string(),
  amplitude_url: z.string().describe('the HTTP V2 base URL in use (the override, else the region’s)'),
  webhook_path: z.string().describe('where OneSignal Event Streams post (with `Authorization: Bearer <secret>`)'),
  status: z.enum(['active', 'paused']),
  status_reason: z.string().nullable(),
  event_names: z.record(z.string(), z.string()).describe('overrides of the Amplitude event name by OneSignal kind'),
  created_at: z.number().int(),
  received: z.number().int(),
  duplicates: z.number().int(),
  forwarded: z.number().int(),
  dead_lettered: z.number().int(),
  pending: z.number().int(),
  forwarded_last_minute: z.number().int(),
});
export type StreamView = z.infer<typeof streamViewSchema>;

export const streamWithSecretSchema = streamViewSchema.extend({ webhook_secret: z.string() });
export type StreamWithSecret = z.infer<typeof streamWithSecretSchema>;

async function viewsOf(ctx: Context, rows: StreamsTable[]): Promise<StreamView[]> {
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id);
  const [pendingBy, deadBy, recentBy] = await Promise.all([
    countOutbox(ctx, { status: 'pending' }, ids),
    countOutbox(ctx, { status: 'dead' }, ids),
    countOutbox(ctx, { status: 'forwarded', since: Date.now() - 60_000 }, ids),
  ]);
  return rows.map((r) => {
    const forwarded = Number(r.forwarded_total);
    const dead = deadBy.get(r.id) ?? 0;
    const pending = pendingBy.get(r.id) ?? 0;
    return {
      id: r.id,
      name: r.name,
      region: r.region,
      amplitude_url: amplitudeBaseUrl(r),
      webhook_path: hookPath(r.id),
      status: r.status === 'paused' ? 'paused' : 'active',
      status_reason: r.status_reason,
      event_names: parseEventNames(r) ?? {},
      created_at: Number(r.created_at),
      received: forwarded + dead + pending,
      duplicates: Number(r.duplicates),
      forwarded,
      dead_lettered: dead,
      pending,
      forwarded_last_minute: recentBy.get(r.id) ?? 0,
    };
  });
}

export async function listStreams(ctx: Context): Promise<StreamView[]> {
  return viewsOf(ctx, await ctx.store.db.selectFrom('streams').selectAll().orderBy('name').orderBy('id').execute());
}

export async function showStream(ctx: Context, id: string): Promise<StreamView> {
  return (await viewsOf(ctx, [await getStream(ctx, id)]))[0]!;
}

async function refuseTakenName(ctx: Context, name: string, except?: string): Promise<void> {
  const taken = await ctx.store.db.selectFrom('streams').select('id').where('name', '=', name).executeTakeFirst();
  if (taken && taken.id !== except)
    throw new AmpError('conflict', `a stream named "${name}" already exists (${taken.id}); pick another name`, {
      details: { existing_id: taken.id, field: 'name' },
    });
}

/** Adds a stream; answers with its webhook secret, shown this once. */
export async function addStream(ctx: Context, input: unknown): Promise<StreamWithSecret> {
  const v = parseWith(streamInputSchema, input ?? {});
  await refuseTakenName(ctx, v.name);
  const { row, webhookSecret } = await createStream(ctx, {
    name: v.name,
    amplitudeApiKey: v.amplitude_api_key,
    region: v.region,
    ...(v.amplitude_url ? { amplitudeUrl: v.amplitude_url } : {}),
    ...(v.event_names ? { eventNames: v.event_names } : {}),
  });
  return { ...(await showStream(ctx, row.id)), webhook_secret: webhookSecret };
}

/** Changes a stream; a new key or URL takes effect at the next forward (a paused stream stays paused until resumed). */
export async function updateStream(ctx: Context, id: string, patch: unknown): Promise<StreamView> {
  const p = parseWith(streamUpdateSchema, patch ?? {});
  await getStream(ctx, id);
  const set: Partial<StreamsTable> = {};
  if (p.name !== undefined) {
    await refuseTakenName(ctx, p.name, id);
    set.name = p.name;
  }
  if (p.amplitude_api_key !== undefined) set.amplitude_api_key_enc = ctx.secrets.encrypt(p.amplitude_api_key);
  if (p.region !== undefined) set.region = p.region;
  if (p.amplitude_url !== undefined) set.amplitude_url = p.amplitude_url;
  if (p.event_names !== undefined)
    set.event_names = Object.keys(p.event_names).length ? JSON.stringify(p.event_names) : null;
  if (Object.keys(set).length) {
    await ctx.store.db.updateTable('streams').set(set).where('id', '=', id).execute();
    invalidateStreamCache(id);
  }
  return showStream(ctx, id);
}

const pauseSchema = z.object({
  reason: z.string().trim().min(1, 'must not be empty').max(500, 'at most 500 characters'),
});

/** Stops forwarding; receiving goes on and events wait in the outbox. */
export async function pauseStream(ctx: Context, id: string, reason = 'paused by user'): Promise<StreamView> {
  const { reason: why } = parseWith(pauseSchema, { reason });
  await pauseStreamRow(ctx, id, why);
  return showStream(ctx, id);
}

/**
 * Resumes forwarding, after asking Amplitude whether it takes the stream's key: a stream paused
 * for a refused key would otherwise pause again at the next forward. Refused keys keep it paused.
 */
export async function resumeStream(ctx: Context, id: string): Promise<StreamView> {
  const row = await getStream(ctx, id);
  const check = await checkHttpV2Key(amplitudeBaseUrl(row), ctx.secrets.decrypt(row.amplitude_api_key_enc));
  if (check.result === 'refused')
    throw new AmpError(
      'conflict',
      `Amplitude still refuses the stream's API key (${check.error}); give the right key with \`stream update ${id} --amplitude-api-key …\`, then resume`,
      { details: { existing_id: id, field: 'amplitude_api_key' } },
    );
  if (check.result === 'unreachable')
    throw new AmpError(
      'vendor_unavailable',
      `no Amplitude answer at ${amplitudeBaseUrl(row)} (${check.error}); the stream stays paused: check its region or URL and resume again`,
    );
  await resumeStreamRow(ctx, id);
  return showStream(ctx, id);
}

export const streamDeletionSchema = z.object({
  id: z.string(),
  deleted: z.boolean(),
  /** Events still waiting to be forwarded when the stream was deleted: they are gone with it. */
  dropped_pending: z.number().int(),
  dropped_dead_letters: z.number().int(),
  message: z.string(),
});
export type StreamDeletion = z.infer<typeof streamDeletionSchema>;

/** Deletes a stream with its outbox (pending events and dead letters); OneSignal's posts to it then get 404. */
export async function deleteStream(ctx: Context, id: string): Promise<StreamDeletion> {
  const v = await showStream(ctx, id);
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('stream_events').where('stream_id', '=', id).execute();
    await trx.deleteFrom('streams').where('id', '=', id).execute();
  });
  invalidateStreamCache(id);
  return {
    id,
    deleted: true,
    dropped_pending: v.pending,
    dropped_dead_letters: v.dead_lettered,
    message: `deleted stream ${v.name} (${id})${v.pending ? `; ${v.pending} event(s) not yet forwarded were dropped` : ''}; remove its Event Stream in OneSignal too`,
  };
}
