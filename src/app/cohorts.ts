import { z } from 'zod';
import { listSourceCohorts, refreshSourceCohorts } from '../connectors/amplitude/cohorts';
import { AmpError, parseWith } from '../errors';
import type { Context } from '../store';
import { type ImportReport, importCohortFile, importCohortIds } from '../sync/cohorts';

/**
 * Cohorts as a user sees them: import (a file, CSV text or a list of ids), list, refresh a
 * source's list from Amplitude, delete (refused while a sync uses the cohort). Every shell calls
 * these.
 */

export const cohortViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  origin: z.string().describe('file, or amplitude for a cohort listed from a source'),
  source_id: z.string().nullable(),
  size: z.number().int().nullable(),
  blank_ids: z.number().int().describe('blank ids (anonymous users) skipped at the last import'),
  last_computed: z.number().int().nullable().describe('epoch ms'),
  created_at: z.number().int(),
  updated_at: z.number().int(),
  sync_ids: z.array(z.string()).describe('the syncs of this cohort'),
});
export type CohortView = z.infer<typeof cohortViewSchema>;

/** Every cohort by name, with the syncs that use it. */
export async function listCohorts(ctx: Context): Promise<CohortView[]> {
  const rows = await ctx.store.db
    .selectFrom('cohorts')
    .select(['id', 'source_id', 'name', 'origin', 'size', 'blank_ids', 'last_computed', 'created_at', 'updated_at'])
    .orderBy('name')
    .orderBy('id')
    .execute();
  const syncs = await ctx.store.db.selectFrom('syncs').select(['id', 'cohort_id']).orderBy('created_at').execute();
  const byCohort = new Map<string, string[]>();
  for (const s of syncs) byCohort.set(s.cohort_id, [...(byCohort.get(s.cohort_id) ?? []), s.id]);
  return rows.map((r) => ({
    ...r,
    size: r.size === null ? null : Number(r.size),
    blank_ids: Number(r.blank_ids ?? 0),
    last_computed: r.last_computed === null ? null : Number(r.last_computed),
    created_at: Number(r.created_at),
    updated_at: Number(r.updated_at),
    sync_ids: byCohort.get(r.id) ?? [],
  }));
}

/** A cohort id becomes part of the OneSignal tag key: letters, digits and _ . : - only. */
export const cohortIdSchema = z
  .string()
  .trim()
  .min(1, 'must not be blank')
  .max(200, 'at most 200 characters')
  .regex(
    /^[A-Za-z0-9_.:-]+$/,
    'may contain only letters, digits and _ . : - (it becomes part of the OneSignal tag key)',
  );

export const cohortNameSchema = z
  .string({ error: 'is required' })
  .trim()
  .min(1, 'must not be blank')
  .max(200, 'at most 200 characters');

/** An id longer than any OneSignal external id is a mistake in the input, refused with its place. */
const MAX_ID_LENGTH = 1000;

/** What `cohort import` takes over the API and from the UI: the members as a list of ids or as CSV text. */
export const cohortImportSchema = z
  .strictObject({
    name: cohortNameSchema.describe('also the OneSignal segment name'),
    id: cohortIdSchema.optional().describe('default: a new id; importing again with the same id replaces the members'),
    user_ids: z
      .array(z.string({ error: 'must be a string' }).max(MAX_ID_LENGTH, `at most ${MAX_ID_LENGTH} characters`))
      .optional()
      .describe('the members; blank ones are counted and skipped, repeats counted once'),
    csv: z
      .string()
      .optional()
      .describe('the members as CSV text with a user_id column, or one id per line (as a cohort file)'),
  })
  .refine((b) => (b.user_ids === undefined) !== (b.csv === undefined), {
    message: 'give the members as either user_ids or csv (one of them)',
    path: ['user_ids'],
  });
export type CohortImport = z.input<typeof cohortImportSchema>;

export const importReportSchema = z.object({
  cohort_id: z.string(),
  name: z.string(),
  members: z.number().int().describe('distinct members now in the cohort'),
  blank: z.number().int().describe('blank ids, skipped'),
  duplicates: z.number().int().describe('repeated ids, counted once'),
  trimmed: z.number().int().describe('ids with surrounding whitespace, trimmed'),
  replaced: z.boolean().describe('true: an existing cohort of this id had its members replaced'),
});

/**
 * Imports (or, with the same id, replaces) a cohort from a list of ids or CSV text. `label` names
 * the text in messages (an uploaded file's name).
 */
export async function importCohort(ctx: Context, input: unknown, opts: { label?: string } = {}): Promise<ImportReport> {
  const b = parseWith(cohortImportSchema, input ?? {});
  const from = b.user_ids !== undefined ? { ids: b.user_ids } : { text: b.csv ?? '', label: opts.label ?? 'csv' };
  return importCohortIds(ctx, { name: b.name, ...(b.id ? { id: b.id } : {}), from });
}

/** `cohort import --file`: a CSV with a user_id column or one id per line, streamed (million-row files). */
export const importCohortFromFile = (ctx: Context, input: { file: string; name: string; id?: string }) =>
  importCohortFile(ctx, input);

export type { ImportReport };

export const cohortDeletionSchema = z.object({ id: z.string(), deleted: z.boolean(), members: z.number().int() });
export type CohortDeletion = z.infer<typeof cohortDeletionSchema>;

export const sourceCohortSchema = z.object({
  id: z.string().describe("Amplitude's cohort id"),
  name: z.string(),
  size: z.number().int().nullable(),
  last_computed: z.number().int().nullable().describe('epoch ms'),
  origin: z.string(),
  source_id: z.string(),
});

/** Refreshes a source's cohort list from Amplitude (free: listing is not a download). */
export const refreshCohorts = (ctx: Context, sourceId: string) => refreshSourceCohorts(ctx, sourceId);

/** A source's cohorts as last listed (fetched from Amplitude the first time, or with refresh). */
export const listCohortsOfSource = (ctx: Context, sourceId: string, opts: { refresh: boolean }) =>
  listSourceCohorts(ctx, sourceId, opts);

/** Deletes a cohort with its stored members; refused while syncs use it, naming them. */
export async function deleteCohort(ctx: Context, id: string): Promise<CohortDeletion> {
  const db = ctx.store.db;
  const cohort = await db.selectFrom('cohorts').select(['id', 'size']).where('id', '=', id).executeTakeFirst();
  if (!cohort) throw new AmpError('not_found', `cohort ${id} not found; list cohorts with \`ampsignal cohort list\``);
  const syncs = await db.selectFrom('syncs').select('id').where('cohort_id', '=', id).orderBy('created_at').execute();
  if (syncs.length)
    throw new AmpError(
      'conflict',
      `cohort ${id} is synced by ${syncs.map((s) => s.id).join(', ')}; delete the sync(s) first (\`sync delete\` removes their tags)`,
      { details: { existing_id: syncs[0]!.id, sync_ids: syncs.map((s) => s.id) } },
    );
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('cohort_members').where('cohort_id', '=', id).execute();
    await trx.deleteFrom('cohorts').where('id', '=', id).execute();
  });
  return { id, deleted: true, members: Number(cohort.size ?? 0) };
}
