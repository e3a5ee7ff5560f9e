import { z } from 'zod';
import {
  addSync,
  listSyncs,
  pauseSync,
  removeSync,
  resumeSync,
  runStartSchema,
  showSync,
  startRun,
  syncInputSchema,
  syncRemovalSchema,
  syncUpdateSchema,
  syncViewSchema,
  updateSync,
} from '../../app/syncs';
import type { JobQueue } from '../../jobs/port';
import type { Context } from '../../store';
import { Answer, type ApiRoute, route } from './routes';

/** /syncs: the operations of src/app/syncs.ts. */
export function syncRoutes(ctx: Context, jobs: JobQueue | undefined): ApiRoute[] {
  const idOf = 'sync';
  return [
    route({
      method: 'GET',
      path: '/syncs',
      summary: 'List syncs with their last run',
      response: z.object({ syncs: z.array(syncViewSchema) }),
      errors: [],
      handle: async () => ({ syncs: await listSyncs(ctx) }),
    }),
    route({
      method: 'POST',
      path: '/syncs',
      summary:
        'Create a sync (cohort × destination, cadence, guard threshold) and its OneSignal segment; 409 with the existing id for a cohort already synced there, a colliding tag key or a segment name OneSignal already has (reuse_segment_id or segment_name)',
      body: syncInputSchema,
      status: 201,
      response: syncViewSchema,
      errors: [400, 404, 409],
      handle: ({ body }) => addSync(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/syncs/:id',
      idOf,
      summary: 'One sync',
      response: syncViewSchema,
      errors: [400, 404],
      handle: ({ id }) => showSync(ctx, id),
    }),
    route({
      method: 'PATCH',
      path: '/syncs/:id',
      idOf,
      summary: 'Change a sync: cadence (checked against the source budget), guard threshold',
      body: syncUpdateSchema,
      response: syncViewSchema,
      errors: [400, 404, 409],
      handle: ({ id, body }) => updateSync(ctx, id, body),
    }),
    route({
      method: 'DELETE',
      path: '/syncs/:id',
      idOf,
      summary:
        'Delete a sync: its tag is removed from the users OneSignal confirmed it on, its segment deleted; deleted=false while removals are pending (delete again)',
      response: syncRemovalSchema,
      errors: [400, 404],
      handle: ({ id }) => removeSync(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/syncs/:id/pause',
      idOf,
      summary: 'Pause a sync: no scheduled or manual runs until resumed',
      response: syncViewSchema,
      errors: [400, 404, 409],
      handle: ({ id }) => pauseSync(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/syncs/:id/resume',
      idOf,
      summary: 'Resume a paused sync',
      response: syncViewSchema,
      errors: [400, 404, 409],
      handle: ({ id }) => resumeSync(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/syncs/:id/run',
      idOf,
      summary:
        'Run a sync now; answers with the run id at once (202 while it runs, 200 when it finished within a few seconds). dry_run: true reports what a run would do, including whether it would be held. 409 while another run of the sync is at work (it names the run)',
      body: z.object({ dry_run: z.boolean({ error: 'must be true or false' }).default(false) }),
      bodyOptional: true,
      response: runStartSchema,
      alsoAnswers: [
        { status: 202, description: 'the run is in progress: poll GET /runs/{run_id}', schema: runStartSchema },
      ],
      errors: [400, 404, 409],
      handle: async ({ id, body }) => {
        const r = await startRun(ctx, id, { dryRun: body.dry_run, ...(jobs ? { jobs } : {}) });
        return new Answer(r.finished ? 200 : 202, r);
      },
    }),
  ];
}
