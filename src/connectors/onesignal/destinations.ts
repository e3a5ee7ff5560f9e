import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import { z } from 'zod';
import { AmpError } from '../../errors';
import { newId } from '../../ids';
import type { Context } from '../../store';
import type { DestinationsTable } from '../../store/schema';
import { OneSignalClient } from './client';
import { oneSignalSettingsSchema } from './definition';

export type DestinationRow = Selectable<DestinationsTable>;

/** What a destination is created from: the connector settings plus the Amplitude source it serves. */
export const destinationInputSchema = oneSignalSettingsSchema.extend({
  source_id: z.string().trim().min(1).nullish(),
});
export type DestinationInput = z.input<typeof destinationInputSchema>;

/** Public JSON of a destination: everything but the key. */
export interface DestinationView {
  id: string;
  name: string;
  kind: string;
  source_id: string | null;
  app_id: string;
  api_url: string;
  tag_key_template: string;
  external_id_property: string;
  max_tags_per_user: number;
  rate_limit_per_second: number;
  status: string;
  status_reason: string | null;
  created_at: number;
}

// Callers in code tend to write camelCase; accept both so nothing is silently dropped.
const CAMEL_ALIASES: Record<string, string> = {
  appId: 'app_id',
  apiKey: 'api_key',
  apiUrl: 'api_url',
  tagKeyTemplate: 'tag_key_template',
  externalIdProperty: 'external_id_property',
  maxTagsPerUser: 'max_tags_per_user',
  maxTags: 'max_tags_per_user',
  rateLimitPerSecond: 'rate_limit_per_second',
  rateLimit: 'rate_limit_per_second',
  sourceId: 'source_id',
};

function normalizeInput(input: unknown): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(input as Record<string, unknown>)) {
    if (v === undefined) continue;
    out[CAMEL_ALIASES[k] ?? k] = v;
  }
  return out;
}

/** Validates destination input; the message names each bad field (`label` renders a field name, e.g. as a CLI flag). */
export function parseDestinationInput(input: unknown, label: (field: string) => string = (f) => f) {
  const r = destinationInputSchema.safeParse(normalizeInput(input));
  if (r.success) return r.data;
  const msg = r.error.issues
    .map((i) => (i.path.length ? `${label(String(i.path[0]))}: ${i.message}` : i.message))
    .join('; ');
  throw new AmpError('invalid_input', msg);
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string };
  return (
    err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY'
  );
}

/** Creates a OneSignal destination (key encrypted at rest). Names are unique. */
export async function createDestination(
  ctx: Context,
  input: DestinationInput | Record<string, unknown>,
  opts: { label?: (field: string) => string } = {},
): Promise<DestinationRow> {
  const s = parseDestinationInput(input, opts.label);
  const db = ctx.store.db;
  if (s.source_id) {
    const src = await db.selectFrom('sources').select('id').where('id', '=', s.source_id).executeTakeFirst();
    if (!src) throw new AmpError('not_found', `source ${s.source_id} not found`);
  }
  const row: DestinationRow = {
    id: newId('dst'),
    name: s.name,
    kind: 'onesignal',
    source_id: s.source_id ?? null,
    app_id: s.app_id,
    api_key_enc: ctx.secrets.encrypt(s.api_key),
    api_url: s.api_url,
    tag_key_template: s.tag_key_template,
    external_id_property: s.external_id_property,
    max_tags_per_user: s.max_tags_per_user,
    rate_limit_per_second: s.rate_limit_per_second,
    status: 'active',
    status_reason: null,
    created_at: Date.now(),
  };
  const taken = () => new AmpError('conflict', `a destination named "${s.name}" already exists; pick another --name`);
  const existing = await db.selectFrom('destinations').select('id').where('name', '=', s.name).executeTakeFirst();
  if (existing) throw taken();
  try {
    await db.insertInto('destinations').values(row).execute();
  } catch (e) {
    // Two creators racing past the check above: the unique index decides.
    if (isUniqueViolation(e)) throw taken();
    throw e;
  }
  return row;
}

export async function getDestination(ctx: Context, id: string): Promise<DestinationRow> {
  const row = await ctx.store.db.selectFrom('destinations').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `destination ${id} not found`);
  return row;
}

export async function listDestinations(ctx: Context): Promise<DestinationRow[]> {
  return ctx.store.db.selectFrom('destinations').selectAll().orderBy('created_at').orderBy('id').execute();
}

/** Stops delivery to a destination (e.g. after a 401/403), keeping the reason for the user. */
export async function pauseDestination(ctx: Context, id: string, reason: string): Promise<DestinationRow> {
  const res = await ctx.store.db
    .updateTable('destinations')
    .set({ status: 'paused', status_reason: reason })
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new AmpError('not_found', `destination ${id} not found`);
  return getDestination(ctx, id);
}

export async function resumeDestination(ctx: Context, id: string): Promise<DestinationRow> {
  const res = await ctx.store.db
    .updateTable('destinations')
    .set({ status: 'active', status_reason: null })
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new AmpError('not_found', `destination ${id} not found`);
  return getDestination(ctx, id);
}

export function destinationView(row: DestinationRow): DestinationView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    source_id: row.source_id,
    app_id: row.app_id,
    api_url: row.api_url,
    tag_key_template: row.tag_key_template,
    external_id_property: row.external_id_property,
    max_tags_per_user: Number(row.max_tags_per_user),
    rate_limit_per_second: Number(row.rate_limit_per_second),
    status: row.status,
    status_reason: row.status_reason,
    created_at: Number(row.created_at),
  };
}

const clients = new Map<string, OneSignalClient>();

/**
 * The process's client for this destination's app + key + URL. Every client of one app id
 * shares that app's limiter (limiter.ts), so destinations on one app never exceed its rate together.
 */
export function clientForDestination(ctx: Context, row: DestinationRow): OneSignalClient {
  const apiKey = ctx.secrets.decrypt(row.api_key_enc);
  // The cache key holds a hash, never the key itself.
  const keyHash = createHash('sha256').update(apiKey).digest('base64url');
  const cacheKey = `${row.app_id}\n${row.api_url}\n${keyHash}`;
  let client = clients.get(cacheKey);
  if (!client) {
    client = new OneSignalClient({
      appId: row.app_id,
      apiKey,
      apiUrl: row.api_url,
      rateLimitPerSecond: Number(row.rate_limit_per_second),
    });
    clients.set(cacheKey, client);
  } else {
    client.limiter.constrain(Number(row.rate_limit_per_second));
  }
  return client;
}
