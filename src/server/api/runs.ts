import { z } from 'zod';
import {
  approve,
  listRuns,
  reject,
  retryFailed,
  runListSchema,
  runRetrySchema,
  runViewSchema,
  showRun,
} from '../../app/runs';
import type { JobQueue } from '../../jobs/port';
import type { Context } from '../../store';
import { type ApiRoute, route } from './routes';

const runList = z.object({ runs: z.array(runViewSchema) });

/** /runs: the operations of src/app/runs.ts (a run's records are history.ts'). */
export function runRoutes(ctx: Context, jobs: JobQueue | undefined): ApiRoute[] {
  const idOf = 'run';
  return [
    route({
      method: 'GET',
      path: '/runs',
      summary: 'Runs newest first, of every sync or of one (?sync=); page back with before = the last started_at',
      query: runListSchema,
      response: runList,
      errors: [400, 404],
      handle: async ({ query }) => ({ runs: await listRuns(ctx, query) }),
    }),
    route({
      method: 'GET',
      path: '/syncs/:id/runs',
      idOf: 'sync',
      summary: 'Run history of a sync, newest first (the same as GET /runs?sync=)',
      query: runListSchema.omit({ sync: true }),
      response: runList,
      errors: [400, 404],
      handle: async ({ id, query }) => ({ runs: await listRuns(ctx, { ...query, sync: id }) }),
    }),
    route({
      method: 'GET',
      path: '/runs/:id',
      idOf,
      summary: 'One run with its counters (live from the ledger while it delivers)',
      response: runViewSchema,
      errors: [400, 404],
      handle: ({ id }) => showRun(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/runs/:id/approve',
      idOf,
      summary: 'Approve a held run (guard): its removals go ahead and are delivered',
      response: runViewSchema,
      errors: [400, 404, 409],
      handle: ({ id }) => approve(ctx, id, { jobs }),
    }),
    route({
      method: 'POST',
      path: '/runs/:id/reject',
      idOf,
      summary: 'Reject a held run: the ledger is left untouched and nothing is pending',
      response: runViewSchema,
      errors: [400, 404, 409],
      handle: ({ id }) => reject(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/runs/:id/retry',
      idOf,
      summary:
        "Retry a finished run's users whose delivery failed for good: they are pending again and delivered (the run is running until then); requeued says how many. 409 while the run is unfinished, when it has none failed, or while its sync or destination is paused",
      response: runRetrySchema,
      errors: [400, 404, 409],
      handle: ({ id }) => retryFailed(ctx, id, { jobs }),
    }),
  ];
}
