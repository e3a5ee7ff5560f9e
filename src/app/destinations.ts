import { z } from 'zod';
import { getConnector } from '../connectors/catalog';
import { oneSignalSettingsSchema } from '../connectors/onesignal/definition';
import {
  clientForDestination,
  type DestinationRow,
  getDestination,
  pauseDestination as pauseDestinationRow,
} from '../connectors/onesignal/destinations';
import { AmpError, parseWith, toAmpError } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { isUniqueViolation } from '../store/constraints';
import { log } from '../telemetry/logger';
import { deleteSyncsLocally, removeSync, type SyncRemoval, syncRemovalSchema } from './syncs';

/**
 * OneSignal destinations as a user sees them: add, list, show, update, test, pause, resume,
 * delete. Every shell (CLI, API, UI) calls these; validation, conflicts and messages live here.
 *
 * Operations take plain JSON-like input (snake_case fields, as the API documents them) and
 * throw AmpError from the catalogue; an invalid input carries its issues, so a shell can name
 * the fields its own way (errors.ts relabel).
 */

export type { DestinationRow };

/** What a destination is created from: the connector settings plus the Amplitude source it serves. */
export const destinationInputSchema = oneSignalSettingsSchema.extend({
  source_id: z.string().trim().min(1).nullish(),
});
export type DestinationInput = z.input<typeof destinationInputSchema>;

const settings = oneSignalSettingsSchema.shape;

/**
 * What can change on a destination. The app id cannot (a different app is a different
 * destination); the tag key template and the id mapping can only until a sync uses them.
 */
export const destinationUpdateSchema = z.strictObject(
  {
    name: settings.name.optional(),
    api_key: settings.api_key.optional(),
    api_url: oneSignalSettingsSchema.shape.api_url.unwrap().optional(),
    tag_key_template: settings.tag_key_template.unwrap().optional(),
    external_id_property: settings.external_id_property.unwrap().optional(),
    max_tags_per_user: settings.max_tags_per_user.unwrap().optional(),
    rate_limit_per_second: settings.rate_limit_per_second.unwrap().optional(),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? `cannot be changed: ${i.keys.join(', ')}` : undefined) },
);
export type DestinationUpdate = z.input<typeof destinationUpdateSchema>;

/** Public JSON of a destination: everything but the key, plus the ledger rows still waiting for OneSignal. */
export const destinationViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.string(),
  source_id: z.string().nullable(),
  app_id: z.string(),
  api_url: z.string(),
  tag_key_template: z.string(),
  external_id_property: z.string(),
  max_tags_per_user: z.number().int(),
  rate_limit_per_second: z.number().int(),
  status: z.enum(['active', 'paused']),
  status_reason: z.string().nullable(),
  created_at: z.number().int(),
  pending_rows: z.number().int(),
});
export type DestinationView = z.infer<typeof destinationViewSchema>;

export function destinationView(row: DestinationRow, pendingRows = 0): DestinationView {
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
    status: row.status === 'paused' ? 'paused' : 'active',
    status_reason: row.status_reason,
    created_at: Number(row.created_at),
    pending_rows: pendingRows,
  };
}

async function pendingRowsOf(ctx: Context, ids?: string[]): Promise<Map<string, number>> {
  let q = ctx.store.db
    .selectFrom('ledger')
    .select(['destination_id', (eb) => eb.fn.countAll().as('n')])
    .whereRef('desired', '<>', 'confirmed')
    .groupBy('destination_id');
  if (ids) q = q.where('destination_id', 'in', ids.length ? ids : ['']);
  const rows = await q.execute();
  return new Map(rows.map((r) => [r.destination_id, Number(r.n)]));
}

export async function listDestinations(ctx: Context): Promise<DestinationView[]> {
  const rows = await ctx.store.db.selectFrom('destinations').selectAll().orderBy('name').orderBy('id').execute();
  const pending = await pendingRowsOf(ctx);
  return rows.map((r) => destinationView(r, pending.get(r.id) ?? 0));
}

export async function showDestination(ctx: Context, id: string): Promise<DestinationView> {
  const row = await getDestination(ctx, id);
  const pending = await pendingRowsOf(ctx, [id]);
  return destinationView(row, pending.get(id) ?? 0);
}

// ---- conflicts ----

async function refuseTakenName(ctx: Context, name: string, except?: string): Promise<void> {
  const taken = await ctx.store.db.selectFrom('destinations').select('id').where('name', '=', name).executeTakeFirst();
  if (taken && taken.id !== except)
    throw new AmpError('conflict', `a destination named "${name}" already exists (${taken.id}); pick another name`, {
      details: { existing_id: taken.id, field: 'name' },
    });
}

/**
 * One OneSignal app is one destination: two destinations on one app would share its rate limit
 * and its tag keys while each believed it owned them.
 */
async function refuseTakenApp(ctx: Context, appId: string): Promise<void> {
  const taken = await ctx.store.db
    .selectFrom('destinations')
    .select(['id', 'name'])
    .where('app_id', '=', appId)
    .executeTakeFirst();
  if (taken)
    throw new AmpError(
      'conflict',
      `OneSignal app ${appId} is already the destination "${taken.name}" (${taken.id}); sync more cohorts to it, or change its key with \`destination update ${taken.id} --api-key …\``,
      { details: { existing_id: taken.id, field: 'app_id' } },
    );
}

// ---- operations ----

/** Adds a OneSignal destination (key encrypted at rest). Refused: a taken name, an app already added. */
export async function addDestination(ctx: Context, input: unknown): Promise<DestinationView> {
  const s = parseWith(destinationInputSchema, input ?? {});
  const db = ctx.store.db;
  if (s.source_id) {
    const src = await db.selectFrom('sources').select('id').where('id', '=', s.source_id).executeTakeFirst();
    if (!src) throw new AmpError('not_found', `source ${s.source_id} not found (see \`ampsignal source list\`)`);
  }
  await refuseTakenName(ctx, s.name);
  await refuseTakenApp(ctx, s.app_id);
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
  try {
    await db.insertInto('destinations').values(row).execute();
  } catch (e) {
    // Two creators racing past the checks above: the unique name index decides.
    if (isUniqueViolation(e)) await refuseTakenName(ctx, s.name);
    throw e;
  }
  return destinationView(row);
}

/**
 * Changes a destination. A new key takes effect at the next delivery (a destination paused for
 * a refused key stays paused until resumed, so the user decides when delivery restarts).
 * Refused once a sync uses the destination: the tag key template and the id mapping, since
 * the tags already set at OneSignal were written under them.
 */
export async function updateDestination(ctx: Context, id: string, patch: unknown): Promise<DestinationView> {
  const p = parseWith(destinationUpdateSchema, patch ?? {});
  const row = await getDestination(ctx, id);
  const set: Partial<DestinationRow> = {};
  if (p.name !== undefined && p.name !== row.name) {
    await refuseTakenName(ctx, p.name, id);
    set.name = p.name;
  }
  if (p.api_key !== undefined) set.api_key_enc = ctx.secrets.encrypt(p.api_key);
  if (p.api_url !== undefined) set.api_url = p.api_url;
  if (p.max_tags_per_user !== undefined) set.max_tags_per_user = p.max_tags_per_user;
  if (p.rate_limit_per_second !== undefined) set.rate_limit_per_second = p.rate_limit_per_second;
  const tagChange = p.tag_key_template !== undefined && p.tag_key_template !== row.tag_key_template;
  const idChange = p.external_id_property !== undefined && p.external_id_property !== row.external_id_property;
  if (tagChange || idChange) {
    const syncs = await ctx.store.db.selectFrom('syncs').select('id').where('destination_id', '=', id).execute();
    if (syncs.length) {
      const what = tagChange ? 'tag key template' : 'id mapping (external_id_property)';
      throw new AmpError(
        'conflict',
        `cannot change the ${what} of ${id}: ${syncs.length} sync(s) (${syncs.map((s) => s.id).join(', ')}) set tags under the current one; delete them first (\`sync delete\` removes their tags) or add a new destination`,
        { details: { existing_id: syncs[0]!.id, sync_ids: syncs.map((s) => s.id) } },
      );
    }
    if (tagChange) set.tag_key_template = p.tag_key_template!;
    if (idChange) set.external_id_property = p.external_id_property!;
  }
  if (Object.keys(set).length) {
    try {
      await ctx.store.db.updateTable('destinations').set(set).where('id', '=', id).execute();
    } catch (e) {
      if (isUniqueViolation(e) && set.name) await refuseTakenName(ctx, set.name, id);
      throw e;
    }
  }
  return showDestination(ctx, id);
}

const pauseSchema = z.object({
  reason: z.string().trim().min(1, 'must not be empty').max(500, 'at most 500 characters'),
});

/** Stops delivery to a destination, keeping the reason for the user. */
export async function pauseDestination(ctx: Context, id: string, reason = 'paused by user'): Promise<DestinationView> {
  const { reason: why } = parseWith(pauseSchema, { reason });
  await pauseDestinationRow(ctx, id, why);
  return showDestination(ctx, id);
}

export async function resumeDestination(ctx: Context, id: string): Promise<DestinationView> {
  const res = await ctx.store.db
    .updateTable('destinations')
    .set({ status: 'active', status_reason: null })
    .where('id', '=', id)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw new AmpError('not_found', `destination ${id} not found`);
  return showDestination(ctx, id);
}

export const destinationDeletionSchema = z.object({
  id: z.string(),
  deleted: z.boolean(),
  /** true: tags and segments were removed at OneSignal; false: left as they are. */
  removed_tags: z.boolean(),
  syncs: z.array(syncRemovalSchema),
  message: z.string(),
});
export type DestinationDeletion = z.infer<typeof destinationDeletionSchema>;

/**
 * Deletes a destination with its syncs. With `removeTags`, each sync is deleted the way
 * `sync delete` does it (tags removed at OneSignal, segment deleted), and a destination whose
 * removals could not all be delivered stays, so running the delete again finishes it. Without,
 * OneSignal keeps the tags and segments and only our records go.
 */
export async function deleteDestination(
  ctx: Context,
  id: string,
  opts: { removeTags: boolean },
): Promise<DestinationDeletion> {
  const row = await getDestination(ctx, id);
  const syncIds = (
    await ctx.store.db.selectFrom('syncs').select('id').where('destination_id', '=', id).orderBy('created_at').execute()
  ).map((s) => s.id);
  const syncs: SyncRemoval[] = [];
  if (opts.removeTags) {
    for (const syncId of syncIds) syncs.push(await removeSync(ctx, syncId));
    const unfinished = syncs.filter((s) => !s.deleted);
    if (unfinished.length)
      return {
        id,
        deleted: false,
        removed_tags: true,
        syncs,
        message: `${unfinished.length} sync(s) of ${row.name} still have tag removals pending at OneSignal (${unfinished.map((s) => s.id).join(', ')}); the destination stays until they are delivered: run the delete again`,
      };
  } else {
    await deleteSyncsLocally(ctx, syncIds);
  }
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('ledger').where('destination_id', '=', id).execute();
    await trx.deleteFrom('destinations').where('id', '=', id).execute();
  });
  return {
    id,
    deleted: true,
    removed_tags: opts.removeTags,
    syncs,
    message: opts.removeTags
      ? `deleted ${row.name} (${id}) and its ${syncIds.length} sync(s); their tags and segments were removed from OneSignal`
      : `deleted ${row.name} (${id}) and its ${syncIds.length} sync(s); OneSignal keeps their tags and segments`,
  };
}

// ---- connection tests ----

export type ConnectionTestFailure = 'credentials_refused' | 'rate_limited' | 'unreachable';

export const connectionTestSchema = z.object({
  ok: z.boolean(),
  /** When the test failed: credentials_refused, rate_limited or unreachable. */
  error: z.enum(['credentials_refused', 'rate_limited', 'unreachable']).optional(),
  message: z.string(),
  destination_id: z.string().optional(),
  app_id: z.string(),
  latency_ms: z.number().int(),
});
export type ConnectionTestResult = z.infer<typeof connectionTestSchema>;

/**
 * "Test connection" reports one of a few outcomes and never the answer itself: the URL is the
 * caller's to choose, so echoing what answered there (or telling a refused connection from a
 * timeout or from a stranger's HTTP answer) would turn the form into a probe of any host:port.
 * Only answers OneSignal gives about credentials and its rate limit get their own outcome.
 */
function testFailure(e: unknown, apiUrl: string): Pick<ConnectionTestResult, 'ok' | 'error' | 'message'> {
  const err = toAmpError(e);
  if (err.code === 'vendor_auth')
    return {
      ok: false,
      error: 'credentials_refused',
      message: 'OneSignal refused the App ID or the App API key: check both under Settings > Keys & IDs',
    };
  if (err.code === 'rate_limited')
    return { ok: false, error: 'rate_limited', message: 'OneSignal is rate limiting this app: try again in a minute' };
  if (err.kind === 'internal') log.error({ err }, 'destination test failed');
  return {
    ok: false,
    error: 'unreachable',
    message: `no OneSignal answer at ${originOf(apiUrl)}: check the API base URL (OneSignal's is https://api.onesignal.com)`,
  };
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the API base URL';
  }
}

async function timedTest(
  appId: string,
  apiUrl: string,
  test: () => Promise<void>,
): Promise<Omit<ConnectionTestResult, 'destination_id'>> {
  const started = Date.now();
  try {
    await test();
    return {
      ok: true,
      message: `connected to OneSignal app ${appId}`,
      app_id: appId,
      latency_ms: Date.now() - started,
    };
  } catch (e) {
    return { ...testFailure(e, apiUrl), app_id: appId, latency_ms: Date.now() - started };
  }
}

/** Tests a saved destination's app id and key against OneSignal. A refusal is a result, not an error. */
export async function testDestination(ctx: Context, id: string): Promise<ConnectionTestResult> {
  const row = await getDestination(ctx, id);
  const r = await timedTest(row.app_id, row.api_url, () => clientForDestination(ctx, row).testConnection());
  return { ...r, destination_id: row.id };
}

/** Tests unsaved settings (the "Test connection" button of the new-destination form). */
export async function testDestinationSettings(input: unknown): Promise<ConnectionTestResult> {
  const s = parseWith(getConnector('onesignal').settingsSchema, input ?? {});
  return timedTest(s.app_id, s.api_url, () => getConnector('onesignal').testAuthentication(s));
}
