import { z } from 'zod';
import {
  addDestination,
  connectionTestSchema,
  deleteDestination,
  destinationDeletionSchema,
  destinationInputSchema,
  destinationUpdateSchema,
  destinationViewSchema,
  listDestinations,
  pauseDestination,
  resumeDestination,
  showDestination,
  testDestination,
  updateDestination,
} from '../../app/destinations';
import type { Context } from '../../store';
import { type ApiRoute, route } from './routes';

const removeTagsQuery = z.object({
  remove_tags: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
});
const pauseBody = z.object({ reason: z.string().optional() });

/** /destinations: every destination operation of src/app/destinations.ts. */
export function destinationRoutes(ctx: Context): ApiRoute[] {
  const idOf = 'destination';
  return [
    route({
      method: 'GET',
      path: '/destinations',
      summary: 'List OneSignal destinations (never their keys)',
      response: z.object({ destinations: z.array(destinationViewSchema) }),
      errors: [],
      handle: async () => ({ destinations: await listDestinations(ctx) }),
    }),
    route({
      method: 'POST',
      path: '/destinations',
      summary: 'Add a OneSignal destination (one per OneSignal app)',
      body: destinationInputSchema,
      status: 201,
      response: destinationViewSchema,
      errors: [400, 404, 409],
      handle: ({ body }) => addDestination(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/destinations/:id',
      idOf,
      summary: 'One destination',
      response: destinationViewSchema,
      errors: [400, 404],
      handle: ({ id }) => showDestination(ctx, id),
    }),
    route({
      method: 'PATCH',
      path: '/destinations/:id',
      idOf,
      summary:
        'Change a destination: name, API key, URL, tag budget, rate limit; tag key template and id mapping only while no sync uses it (409 with the reason)',
      body: destinationUpdateSchema,
      response: destinationViewSchema,
      errors: [400, 404, 409],
      handle: ({ id, body }) => updateDestination(ctx, id, body),
    }),
    route({
      method: 'DELETE',
      path: '/destinations/:id',
      idOf,
      summary:
        'Delete a destination and its syncs; remove_tags=true removes their tags and segments from OneSignal first (deleted=false while removals are pending)',
      query: removeTagsQuery,
      response: destinationDeletionSchema,
      errors: [400, 404],
      handle: ({ id, query }) => deleteDestination(ctx, id, { removeTags: query.remove_tags }),
    }),
    route({
      method: 'POST',
      path: '/destinations/:id/test',
      idOf,
      summary:
        'Test the destination credentials against OneSignal: a refused key is ok=false with error credentials_refused, rate_limited or unreachable, not an HTTP error',
      response: connectionTestSchema,
      errors: [400, 404],
      handle: ({ id }) => testDestination(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/destinations/:id/pause',
      idOf,
      summary: 'Stop delivering to a destination',
      body: pauseBody,
      bodyOptional: true,
      response: destinationViewSchema,
      errors: [400, 404],
      handle: ({ id, body }) => pauseDestination(ctx, id, body.reason),
    }),
    route({
      method: 'POST',
      path: '/destinations/:id/resume',
      idOf,
      summary: 'Resume delivering to a paused destination',
      response: destinationViewSchema,
      errors: [400, 404],
      handle: ({ id }) => resumeDestination(ctx, id),
    }),
  ];
}
