import { z } from 'zod';
import { downloadsThisMonth, plannedMonthlyDownloads } from '../connectors/amplitude/budget';
import {
  cohortsBaseUrl,
  createSourceSchema,
  getSource,
  revealWebhookSecret,
  type SourceRow,
  sourceCredentials,
  sourceView,
} from '../connectors/amplitude/sources';
import { getConnector } from '../connectors/catalog';
import { AmpError, parseWith, toAmpError } from '../errors';
import { newId, newSecret } from '../ids';
import type { Context } from '../store';
import { log } from '../telemetry/logger';
import { removeSync, type SyncRemoval, syncRemovalSchema } from './syncs';

/**
 * Amplitude sources (one per project) as a user sees them: add, list, show, update, test,
 * delete. Every shell (CLI, API, UI) calls these; validation, conflicts and messages live here.
 * Input is snake_case JSON as the API documents it; errors come from the one catalogue.
 */

export { createSourceSchema as sourceInputSchema };
export type SourceInput = z.input<typeof createSourceSchema>;

const s = createSourceSchema.shape;

/** What can change on a source: its name, keys (a rotated key), region, API URL (null: by region) and budget. */
export const sourceUpdateSchema = z.strictObject(
  {
    name: s.name.optional(),
    api_key: s.api_key.optional(),
    secret_key: s.secret_key.optional(),
    region: s.region.unwrap().optional(),
    api_url: s.api_url.unwrap().nullable().optional(),
    download_budget: s.download_budget.unwrap().optional(),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `cannot be changed: ${i.keys.join(', ')}` : undefined) },
);
export type SourceUpdate = z.input<typeof sourceUpdateSchema>;

export const sourceViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  region: z.string(),
  api_url: z.string().describe('the Behavioral Cohorts API base URL in use (the override, else the region’s)'),
  download_budget: z.number().int(),
  webhook_path: z.string().describe('where Amplitude’s cohort webhook posts (with `Authorization: Bearer <secret>`)'),
  created_at: z.number().int(),
  downloads_this_month: z.number().int(),
  planned_downloads_per_month: z.number().int(),
});
export type SourceView = z.infer<typeof sourceViewSchema>;

/** A source as `source add` answers: the webhook secret is shown this once (and by `show --reveal-secret`). */
export const sourceWithSecretSchema = sourceViewSchema.extend({ webhook_secret: z.string() });
export type SourceWithSecret = z.infer<typeof sourceWithSecretSchema>;

async function viewOf(ctx: Context, row: SourceRow): Promise<SourceView> {
  const [used, planned] = await Promise.all([downloadsThisMonth(ctx, row.id), plannedMonthlyDownloads(ctx, row.id)]);
  return {
    ...sourceView(row),
    download_budget: Number(row.download_budget),
    created_at: Number(row.created_at),
    downloads_this_month: used,
    planned_downloads_per_month: planned.total,
  };
}

export async function listSources(ctx: Context): Promise<SourceView[]> {
  const rows = await ctx.store.db.selectFrom('sources').selectAll().orderBy('created_at').orderBy('id').execute();
  return Promise.all(rows.map((r) => viewOf(ctx, r)));
}

export async function showSource(ctx: Context, id: string, opts: { revealSecret?: boolean } = {}) {
  const row = await getSource(ctx, id);
  const view = await viewOf(ctx, row);
  return opts.revealSecret ? { ...view, webhook_secret: revealWebhookSecret(ctx, row) } : view;
}

// ---- conflicts ----

async function refuseTakenName(ctx: Context, name: string, except?: string): Promise<void> {
  const taken = await ctx.store.db.selectFrom('sources').select('id').where('name', '=', name).executeTakeFirst();
  if (taken && taken.id !== except)
    throw new AmpError('conflict', `a source named "${name}" already exists (${taken.id}); pick another name`, {
      details: { existing_id: taken.id, field: 'name' },
    });
}

/**
 * One Amplitude project is one source: a second source with the same API key would spend its
 * own 500-download budget on the same project and find every cohort already owned by the first.
 * Keys are stored encrypted with a random nonce, so each is decrypted to compare (a handful).
 */
async function refuseTakenProject(ctx: Context, apiKey: string, except?: string): Promise<void> {
  const rows = await ctx.store.db.selectFrom('sources').select(['id', 'name', 'api_key_enc']).execute();
  const taken = rows.find((r) => r.id !== except && ctx.secrets.decrypt(r.api_key_enc) === apiKey);
  if (taken)
    throw new AmpError(
      'conflict',
      `this Amplitude project (its API key) is already the source "${taken.name}" (${taken.id}); one source per project`,
      { details: { existing_id: taken.id, field: 'api_key' } },
    );
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string };
  return err?.code === '23505' || err?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

// ---- operations ----

/** Adds an Amplitude project; answers with its webhook secret, shown this once. */
export async function addSource(ctx: Context, input: unknown): Promise<SourceWithSecret> {
  const v = parseWith(createSourceSchema, input ?? {});
  await refuseTakenName(ctx, v.name);
  await refuseTakenProject(ctx, v.api_key);
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
  try {
    await ctx.store.db.insertInto('sources').values(row).execute();
  } catch (e) {
    // Two creators racing on one name: the unique index decides.
    if (isUniqueViolation(e)) await refuseTakenName(ctx, v.name);
    throw e;
  }
  return { ...(await viewOf(ctx, row)), webhook_secret: webhookSecret };
}

/** Changes a source. New keys take effect at the next pull. */
export async function updateSource(ctx: Context, id: string, patch: unknown): Promise<SourceView> {
  const p = parseWith(sourceUpdateSchema, patch ?? {});
  const row = await getSource(ctx, id);
  const set: Partial<SourceRow> = {};
  if (p.name !== undefined && p.name !== row.name) {
    await refuseTakenName(ctx, p.name, id);
    set.name = p.name;
  }
  if (p.api_key !== undefined) {
    await refuseTakenProject(ctx, p.api_key, id);
    set.api_key_enc = ctx.secrets.encrypt(p.api_key);
  }
  if (p.secret_key !== undefined) set.secret_key_enc = ctx.secrets.encrypt(p.secret_key);
  if (p.region !== undefined) set.region = p.region;
  if (p.api_url !== undefined) set.api_url = p.api_url;
  if (p.download_budget !== undefined) set.download_budget = p.download_budget;
  if (Object.keys(set).length) {
    try {
      await ctx.store.db.updateTable('sources').set(set).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e) && set.name) await refuseTakenName(ctx, set.name, id);
      throw e;
    }
  }
  return showSource(ctx, id);
}

export const sourceTestSchema = z.object({
  ok: z.boolean(),
  source_id: z.string(),
  /** When the test failed: credentials_refused, rate_limited or unreachable. */
  error: z.enum(['credentials_refused', 'rate_limited', 'unreachable']).optional(),
  message: z.string(),
  latency_ms: z.number().int(),
});
export type SourceTestResult = z.infer<typeof sourceTestSchema>;

/**
 * Checks a source's keys by listing its cohorts (free: not a download). Like the destination
 * test it names an outcome, never what answered at the URL.
 */
export async function testSource(ctx: Context, id: string): Promise<SourceTestResult> {
  const row = await getSource(ctx, id);
  const creds = sourceCredentials(ctx, row);
  const started = Date.now();
  const settings = {
    name: row.name,
    region: row.region as 'us' | 'eu',
    api_key: creds.apiKey,
    secret_key: creds.secretKey,
    api_url: cohortsBaseUrl(row),
    download_budget: Number(row.download_budget),
  };
  try {
    await getConnector('amplitude').testAuthentication(settings);
    return { ok: true, source_id: id, message: 'Amplitude accepted the keys', latency_ms: Date.now() - started };
  } catch (e) {
    const err = toAmpError(e);
    const latency_ms = Date.now() - started;
    if (err.code === 'vendor_auth' || err.status === 401 || err.status === 403)
      return {
        ok: false,
        source_id: id,
        error: 'credentials_refused',
        message: 'Amplitude refused the API key or the secret key: check both under Settings > Projects',
        latency_ms,
      };
    if (err.code === 'rate_limited')
      return { ok: false, source_id: id, error: 'rate_limited', message: 'Amplitude is rate limiting', latency_ms };
    if (err.kind === 'internal') log.error({ err }, 'source test failed');
    return {
      ok: false,
      source_id: id,
      error: 'unreachable',
      message: 'no Amplitude answer at the source’s API URL: check the region or the URL override',
      latency_ms,
    };
  }
}

export const sourceDeletionSchema = z.object({
  id: z.string(),
  deleted: z.boolean(),
  /** Syncs of the source's cohorts deleted with it (--force), each with its tags removed. */
  syncs: z.array(syncRemovalSchema),
  message: z.string(),
});
export type SourceDeletion = z.infer<typeof sourceDeletionSchema>;

/**
 * Deletes a source with its cohorts. Refused while syncs use its cohorts, naming them, unless
 * `force`: then each sync is deleted first the way `sync delete` does it (tags and segment
 * removed). A sync whose removals are still pending keeps the source until a later delete.
 */
export async function deleteSource(ctx: Context, id: string, opts: { force?: boolean } = {}): Promise<SourceDeletion> {
  const row = await getSource(ctx, id);
  const db = ctx.store.db;
  const syncIds = (
    await db
      .selectFrom('syncs')
      .innerJoin('cohorts', 'cohorts.id', 'syncs.cohort_id')
      .select('syncs.id')
      .where('cohorts.source_id', '=', id)
      .orderBy('syncs.created_at')
      .execute()
  ).map((r) => r.id);
  const destinations = await db.selectFrom('destinations').select('id').where('source_id', '=', id).execute();
  if (syncIds.length && !opts.force)
    throw new AmpError(
      'conflict',
      `source ${row.name} (${id}) has ${syncIds.length} sync(s) of its cohorts (${syncIds.join(', ')}); delete them first, or delete with --force to delete them too (their tags are removed)`,
      { details: { existing_id: syncIds[0], sync_ids: syncIds } },
    );
  const syncs: SyncRemoval[] = [];
  for (const syncId of syncIds) syncs.push(await removeSync(ctx, syncId));
  const unfinished = syncs.filter((x) => !x.deleted);
  if (unfinished.length)
    return {
      id,
      deleted: false,
      syncs,
      message: `${unfinished.length} sync(s) still have tag removals pending at OneSignal (${unfinished.map((x) => x.id).join(', ')}); the source stays until they are delivered: run the delete again`,
    };
  await db.transaction().execute(async (trx) => {
    const cohorts = trx.selectFrom('cohorts').select('id').where('source_id', '=', id);
    await trx.deleteFrom('cohort_members').where('cohort_id', 'in', cohorts).execute();
    await trx.deleteFrom('cohorts').where('source_id', '=', id).execute();
    await trx.deleteFrom('webhook_inbox').where('source_id', '=', id).execute();
    await trx.deleteFrom('downloads').where('source_id', '=', id).execute();
    // A destination that served this project stays (it is a OneSignal app): it just serves none now.
    if (destinations.length)
      await trx.updateTable('destinations').set({ source_id: null }).where('source_id', '=', id).execute();
    await trx.deleteFrom('sources').where('id', '=', id).execute();
  });
  return {
    id,
    deleted: true,
    syncs,
    message: `deleted source ${row.name} (${id})${syncs.length ? ` and ${syncs.length} sync(s), their tags removed` : ''}`,
  };
}
