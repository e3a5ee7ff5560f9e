import { z } from 'zod';
import { AmpError } from '../../errors';
import { newId, newSecret } from '../../ids';
import type { Context } from '../../store';
import type { SourcesTable } from '../../store/schema';
import { type AmplitudeRegion, COHORTS_API_URL, DEFAULT_MONTHLY_DOWNLOAD_BUDGET } from './constants';

/** One source = one Amplitude project ("enable the integration per project"). */
export const createSourceSchema = z.object({
  name: z.string().trim().min(1, 'a name is required').max(100),
  api_key: z.string().trim().min(1, 'the project API key is required'),
  secret_key: z.string().trim().min(1, 'the project secret key is required'),
  region: z.enum(['us', 'eu'], { message: 'region must be us or eu' }).default('us'),
  api_url: z
    .url({ protocol: /^https?$/, message: 'api_url must be an http(s) URL' })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  download_budget: z.coerce
    .number({ message: 'download budget must be a number' })
    .int('download budget must be a whole number')
    .min(0)
    .max(1_000_000)
    .default(DEFAULT_MONTHLY_DOWNLOAD_BUDGET),
});
export type CreateSourceInput = z.input<typeof createSourceSchema>;

export type SourceRow = SourcesTable;

export interface SourceView {
  id: string;
  name: string;
  kind: string;
  region: string;
  api_url: string;
  download_budget: number;
  webhook_path: string;
  created_at: number;
}

export function webhookPath(sourceId: string): string {
  return `/hooks/amplitude/cohorts/${sourceId}`;
}

/** Where the Behavioral Cohorts API lives for this source (override, else by region). */
export function cohortsBaseUrl(row: Pick<SourceRow, 'api_url' | 'region'>): string {
  return row.api_url ?? COHORTS_API_URL[(row.region as AmplitudeRegion) ?? 'us'] ?? COHORTS_API_URL.us;
}

/** The public JSON of a source: never a key; the webhook secret only when asked for explicitly. */
export function sourceView(row: SourceRow): SourceView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    region: row.region,
    api_url: cohortsBaseUrl(row),
    download_budget: row.download_budget,
    webhook_path: webhookPath(row.id),
    created_at: row.created_at,
  };
}

export function revealWebhookSecret(ctx: Context, row: SourceRow): string {
  return ctx.secrets.decrypt(row.webhook_secret_enc);
}

export async function createSource(
  ctx: Context,
  input: CreateSourceInput,
): Promise<SourceView & { webhook_secret: string }> {
  const parsed = createSourceSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues
      .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
      .join('; ');
    throw new AmpError('invalid_input', msg);
  }
  const v = parsed.data;
  const webhookSecret = newSecret();
  const row: SourceRow = {
    id: newId('src'),
    name: v.name,
    kind: 'amplitude',
    region: v.region,
    api_url: v.api_url ?? null,
    api_key_enc: ctx.secrets.encrypt(v.api_key),
    secret_key_enc: ctx.secrets.encrypt(v.secret_key),
    webhook_secret_enc: ctx.secrets.encrypt(webhookSecret),
    download_budget: v.download_budget,
    created_at: Date.now(),
  };
  const taken = await ctx.store.db.selectFrom('sources').select('id').where('name', '=', v.name).executeTakeFirst();
  if (taken) throw new AmpError('conflict', `a source named "${v.name}" already exists (${taken.id})`);
  try {
    await ctx.store.db.insertInto('sources').values(row).execute();
  } catch (e) {
    // Two creators racing on one name: the unique index decides.
    if (/unique|duplicate/i.test((e as Error).message))
      throw new AmpError('conflict', `a source named "${v.name}" already exists`);
    throw e;
  }
  return { ...sourceView(row), webhook_secret: webhookSecret };
}

export async function getSource(ctx: Context, id: string): Promise<SourceRow> {
  const row = await ctx.store.db.selectFrom('sources').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `no source with id ${id} (see \`ampsignal source list\`)`);
  return row;
}

export async function listSources(ctx: Context): Promise<SourceRow[]> {
  return ctx.store.db.selectFrom('sources').selectAll().orderBy('created_at').orderBy('id').execute();
}

export interface SourceCredentials {
  baseUrl: string;
  apiKey: string;
  secretKey: string;
}

export function sourceCredentials(ctx: Context, row: SourceRow): SourceCredentials {
  return {
    baseUrl: cohortsBaseUrl(row),
    apiKey: ctx.secrets.decrypt(row.api_key_enc),
    secretKey: ctx.secrets.decrypt(row.secret_key_enc),
  };
}

export const updateSourceSchema = z.object({
  name: createSourceSchema.shape.name.optional(),
  api_url: z
    .url({ protocol: /^https?$/, message: 'api_url must be an http(s) URL' })
    .transform((u) => u.replace(/\/+$/, ''))
    .nullable()
    .optional(),
  download_budget: z.coerce
    .number({ message: 'download budget must be a number' })
    .int('download budget must be a whole number')
    .min(0)
    .max(1_000_000)
    .optional(),
});

/** Changes a source's name, API URL override (null = by region) or monthly download budget. */
export async function updateSource(
  ctx: Context,
  id: string,
  patch: z.input<typeof updateSourceSchema>,
): Promise<SourceView> {
  const parsed = updateSourceSchema.safeParse(patch);
  if (!parsed.success) {
    throw new AmpError('invalid_input', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  await getSource(ctx, id);
  const set: Partial<SourceRow> = {};
  if (parsed.data.name !== undefined) set.name = parsed.data.name;
  if (parsed.data.api_url !== undefined) set.api_url = parsed.data.api_url;
  if (parsed.data.download_budget !== undefined) set.download_budget = parsed.data.download_budget;
  if (Object.keys(set).length > 0) {
    try {
      await ctx.store.db.updateTable('sources').set(set).where('id', '=', id).execute();
    } catch (e) {
      if (/unique|duplicate/i.test((e as Error).message))
        throw new AmpError('conflict', `a source named "${set.name}" already exists`);
      throw e;
    }
  }
  return sourceView(await getSource(ctx, id));
}
