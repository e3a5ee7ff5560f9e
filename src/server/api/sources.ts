import { z } from 'zod';
import {
  cohortDeletionSchema,
  cohortImportSchema,
  cohortViewSchema,
  deleteCohort,
  importCohort,
  importReportSchema,
  listCohorts,
  refreshCohorts,
  sourceCohortSchema,
} from '../../app/cohorts';
import {
  addSource,
  deleteSource,
  listSources,
  showSource,
  sourceDeletionSchema,
  sourceInputSchema,
  sourceTestSchema,
  sourceUpdateSchema,
  sourceViewSchema,
  sourceWithSecretSchema,
  testSource,
  updateSource,
} from '../../app/sources';
import type { Context } from '../../store';
import { type ApiRoute, route } from './routes';

const forceQuery = z.object({
  force: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
});

/** /sources: every source operation of src/app/sources.ts. */
export function sourceRoutes(ctx: Context): ApiRoute[] {
  const idOf = 'source';
  return [
    route({
      method: 'GET',
      path: '/sources',
      summary: 'List Amplitude sources (never their keys or webhook secrets)',
      response: z.object({ sources: z.array(sourceViewSchema) }),
      errors: [],
      handle: async () => ({ sources: await listSources(ctx) }),
    }),
    route({
      method: 'POST',
      path: '/sources',
      summary:
        'Add an Amplitude project as a source (one per project: the same API key twice is 409). The answer carries the webhook secret, this once',
      body: sourceInputSchema,
      status: 201,
      response: sourceWithSecretSchema,
      errors: [400, 409],
      handle: ({ body }) => addSource(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/sources/:id',
      idOf,
      summary: 'One source with its downloads this month and planned a month',
      response: sourceViewSchema,
      errors: [400, 404],
      handle: ({ id }) => showSource(ctx, id),
    }),
    route({
      method: 'PATCH',
      path: '/sources/:id',
      idOf,
      summary: 'Change a source: name, keys, region, API URL (null: by region), download budget',
      body: sourceUpdateSchema,
      response: sourceViewSchema,
      errors: [400, 404, 409],
      handle: ({ id, body }) => updateSource(ctx, id, body),
    }),
    route({
      method: 'DELETE',
      path: '/sources/:id',
      idOf,
      summary:
        'Delete a source and its cohorts: 409 naming the syncs that use them, unless force=true deletes those syncs too (tags and segments removed)',
      query: forceQuery,
      response: sourceDeletionSchema,
      errors: [400, 404, 409],
      handle: ({ id, query }) => deleteSource(ctx, id, { force: query.force }),
    }),
    route({
      method: 'POST',
      path: '/sources/:id/test',
      idOf,
      summary:
        'Test the source keys against Amplitude (lists cohorts: no download): a refusal is ok=false with error credentials_refused, rate_limited or unreachable',
      response: sourceTestSchema,
      errors: [400, 404],
      handle: ({ id }) => testSource(ctx, id),
    }),
  ];
}

/** A cohort's ids as JSON: a million ids of ~30 characters fit. */
const COHORT_BODY_LIMIT = 64 * 1024 * 1024;

/** The cohort operations of src/app/cohorts.ts. */
export function cohortRoutes(ctx: Context): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/cohorts',
      summary: 'List cohorts (imported and listed from sources) with the syncs that use each',
      response: z.object({ cohorts: z.array(cohortViewSchema) }),
      errors: [],
      handle: async () => ({ cohorts: await listCohorts(ctx) }),
    }),
    route({
      method: 'POST',
      path: '/cohorts',
      summary:
        'Import a cohort (or, with the id of an imported one, replace its members) from user_ids or CSV text (a user_id column, or one id per line); blank ids are counted and skipped, repeats counted once. An id that is not a string or is too long is a 400 naming its place (user_ids.N)',
      body: cohortImportSchema,
      bodyLimit: COHORT_BODY_LIMIT,
      status: 201,
      response: importReportSchema,
      errors: [400, 409, 413],
      handle: ({ body }) => importCohort(ctx, body),
    }),
    route({
      method: 'POST',
      path: '/sources/:id/refresh',
      idOf: 'source',
      summary: "Refresh the source's cohort list from Amplitude (listing costs no download)",
      response: z.object({ cohorts: z.array(sourceCohortSchema) }),
      errors: [400, 404, 502],
      handle: async ({ id }) => ({ cohorts: await refreshCohorts(ctx, id) }),
    }),
    route({
      method: 'DELETE',
      path: '/cohorts/:id',
      idOf: 'cohort',
      summary: 'Delete a cohort and its stored members: 409 naming the syncs that use it',
      response: cohortDeletionSchema,
      errors: [400, 404, 409],
      handle: ({ id }) => deleteCohort(ctx, id),
    }),
  ];
}
