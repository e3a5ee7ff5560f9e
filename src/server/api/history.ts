import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Context } from '../../store';
import { EXPORT_FORMATS, exportRunRecords, MAX_PAGE, pageRunRecords, RECORD_OUTCOMES } from '../../sync/record-reads';
import { getRunRow } from '../../sync/runs';
import { showUser } from '../../sync/user-history';
import { parseOr400 } from './errors';
import { type ApiRoute, idSchema, route } from './routes';

/** Run history under /api/v1: a run's records page by page, their export, one user across syncs. */

const outcome = z.enum(RECORD_OUTCOMES, { error: `must be one of ${RECORD_OUTCOMES.join(', ')}` });

export const recordsPageQuery = z.object({
  outcome: outcome.optional(),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(MAX_PAGE, `must be at most ${MAX_PAGE}`)
    .default(100),
  cursor: z.string().min(1).max(2000).optional().describe('next_cursor of the previous page'),
});

export const exportQuery = z.object({
  format: z.enum(EXPORT_FORMATS, { error: 'must be csv or ndjson' }).default('csv'),
  outcome: outcome.optional(),
});

const userQuery = z.object({
  external_id: z.string().trim().min(1, 'an external id is required').max(1000, 'at most 1000 characters'),
});

const recordSchema = z.object({
  external_id: z.string(),
  operation: z.enum(['add', 'remove']),
  outcome: outcome,
  status: z.number().int().nullable().describe("the vendor's HTTP status of the answer that settled it"),
  message: z.string().nullable(),
  attempts: z.number().int(),
  at: z.string().nullable().describe('when it settled; null while pending'),
});

const userSchema = z.object({
  external_id: z.string(),
  syncs: z.array(
    z.object({
      sync_id: z.string(),
      cohort_id: z.string(),
      cohort_name: z.string().nullable(),
      destination_id: z.string(),
      destination_name: z.string().nullable(),
      tag_key: z.string(),
      in_cohort: z.boolean().nullable(),
      tag_confirmed: z.boolean().nullable(),
      state: z.enum(['in_sync', 'pending', 'not_found', 'failed']).nullable(),
      last_outcome: z.string().nullable(),
      last_error: z.string().nullable(),
      updated_at: z.string().nullable(),
      records: z.array(
        recordSchema.omit({ external_id: true, outcome: true, at: true }).extend({
          run_id: z.string(),
          trigger: z.string(),
          outcome: z.enum(['delivered', 'not_found', 'failed']),
          at: z.string(),
        }),
      ),
    }),
  ),
});

export function historyRoutes(ctx: Context): ApiRoute[] {
  return [
    route({
      method: 'GET',
      path: '/runs/:id/records',
      idOf: 'run',
      summary:
        "A page of a run's records in user order (settled ones, then pending ones): pass next_cursor back as cursor until it is null",
      query: recordsPageQuery,
      response: z.object({ records: z.array(recordSchema), next_cursor: z.string().nullable() }),
      errors: [400, 404],
      handle: ({ id, query }) => pageRunRecords(ctx, id, query),
    }),
    route({
      method: 'GET',
      path: '/users',
      summary:
        "One user (?external_id=) across syncs: whether the tag is wanted and confirmed, the last outcomes with times and the vendor's message",
      query: userQuery,
      response: userSchema,
      errors: [400],
      handle: ({ query }) => showUser(ctx, query.external_id),
    }),
  ];
}

const CONTENT_TYPES = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson' } as const;

/**
 * GET /runs/:id/records/export?format=csv|ndjson: every record of a run, streamed page by page
 * (a million records never sit in memory), as a download.
 */
export function registerExportRoute(api: FastifyInstance, ctx: Context): void {
  api.get('/runs/:id/records/export', async (req, reply) => {
    const id = parseOr400(z.object({ id: idSchema }), req.params, 'path').id;
    const q = parseOr400(exportQuery, req.query ?? {}, 'query');
    await getRunRow(ctx, id); // 404 before the first byte
    return reply
      .type(CONTENT_TYPES[q.format])
      .header('content-disposition', `attachment; filename="${id}-records.${q.format}"`)
      .send(exportStream(ctx, id, q));
  });
}

function exportStream(ctx: Context, id: string, q: z.infer<typeof exportQuery>) {
  return Readable.from(exportRunRecords(ctx, id, q.format, q.outcome ? { outcome: q.outcome } : {}));
}
