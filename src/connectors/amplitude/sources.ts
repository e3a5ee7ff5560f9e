import { z } from 'zod';
import { AmpError } from '../../errors';
import type { Context } from '../../store';
import type { SourcesTable } from '../../store/schema';
import { NUL_PROBLEM, storable } from '../../store/text';
import { type AmplitudeRegion, COHORTS_API_URL, DEFAULT_MONTHLY_DOWNLOAD_BUDGET } from './constants';

/**
 * One source = one Amplitude project ("enable the integration per project"). Its settings and
 * the engine's reads live here; adding, changing and deleting sources is src/app/sources.ts.
 */
export const createSourceSchema = z.object({
  name: z
    .string({ error: 'is required' })
    .trim()
    .min(1, 'is required')
    .max(100, 'at most 100 characters')
    .refine(storable, NUL_PROBLEM),
  api_key: z
    .string({ error: 'is required (the project API key)' })
    .trim()
    .min(1, 'is required (the project API key)')
    .max(500, 'too long for an API key'),
  secret_key: z
    .string({ error: 'is required (the project secret key)' })
    .trim()
    .min(1, 'is required (the project secret key)')
    .max(500, 'too long for a secret key'),
  region: z.enum(['us', 'eu'], { error: 'must be us or eu' }).default('us'),
  api_url: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  download_budget: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(0, 'must be 0 or more')
    .max(1_000_000, 'must be at most 1000000')
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

export async function getSource(ctx: Context, id: string): Promise<SourceRow> {
  const row = await ctx.store.db.selectFrom('sources').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new AmpError('not_found', `no source with id ${id} (see \`ampsignal source list\`)`);
  return row;
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
