import { z } from 'zod';
import {
  deadLetterListSchema,
  deadLetterViewSchema,
  listDeadLetters,
  replay,
  replayResultSchema,
  replaySchema,
} from '../../app/dead-letters';
import {
  addStream,
  deleteStream,
  listStreams,
  pauseStream,
  resumeStream,
  showStream,
  streamDeletionSchema,
  streamInputSchema,
  streamUpdateSchema,
  streamViewSchema,
  streamWithSecretSchema,
  updateStream,
} from '../../app/streams';
import { JOB_KEYS, type JobQueue, QUEUES, TASKS } from '../../jobs/port';
import type { Context } from '../../store';
import { type ApiRoute, route } from './routes';

/** /streams and /dead-letters: every operation of src/app/streams.ts and src/app/dead-letters.ts. */
export function streamRoutes(ctx: Context, jobs: JobQueue | undefined): ApiRoute[] {
  const idOf = 'stream';
  return [
    route({
      method: 'GET',
      path: '/streams',
      summary: 'List event streams with counters (never their keys or secrets)',
      response: z.object({ streams: z.array(streamViewSchema) }),
      errors: [],
      handle: async () => ({ streams: await listStreams(ctx) }),
    }),
    route({
      method: 'POST',
      path: '/streams',
      summary: 'Add a OneSignal → Amplitude event stream; the answer carries its webhook secret, this once',
      body: streamInputSchema,
      status: 201,
      response: streamWithSecretSchema,
      errors: [400, 409],
      handle: ({ body }) => addStream(ctx, body),
    }),
    route({
      method: 'GET',
      path: '/streams/:id',
      idOf,
      summary: 'One stream with counters',
      response: streamViewSchema,
      errors: [400, 404],
      handle: ({ id }) => showStream(ctx, id),
    }),
    route({
      method: 'PATCH',
      path: '/streams/:id',
      idOf,
      summary: 'Change a stream: name, Amplitude API key, region, URL (null: by region), event names',
      body: streamUpdateSchema,
      response: streamViewSchema,
      errors: [400, 404, 409],
      handle: ({ id, body }) => updateStream(ctx, id, body),
    }),
    route({
      method: 'DELETE',
      path: '/streams/:id',
      idOf,
      summary: 'Delete a stream with its outbox (events not yet forwarded, dead letters)',
      response: streamDeletionSchema,
      errors: [400, 404],
      handle: ({ id }) => deleteStream(ctx, id),
    }),
    route({
      method: 'POST',
      path: '/streams/:id/pause',
      idOf,
      summary: 'Stop forwarding (events are still received and kept)',
      body: z.object({ reason: z.string().optional() }),
      bodyOptional: true,
      response: streamViewSchema,
      errors: [400, 404],
      handle: ({ id, body }) => pauseStream(ctx, id, body.reason),
    }),
    route({
      method: 'POST',
      path: '/streams/:id/resume',
      idOf,
      summary:
        'Resume forwarding after checking the Amplitude key: 409 (still paused) when Amplitude refuses it, 502 when Amplitude does not answer',
      response: streamViewSchema,
      errors: [400, 404, 409, 502],
      handle: async ({ id }) => {
        const v = await resumeStream(ctx, id);
        await wake(jobs, [id]);
        return v;
      },
    }),
    route({
      method: 'GET',
      path: '/dead-letters',
      summary: 'Events Amplitude refused for good, newest first, each with its reason',
      query: deadLetterListSchema,
      response: z.object({ dead_letters: z.array(deadLetterViewSchema) }),
      errors: [400, 404],
      handle: async ({ query }) => ({ dead_letters: await listDeadLetters(ctx, query) }),
    }),
    route({
      method: 'POST',
      path: '/dead-letters/replay',
      summary:
        'Put dead letters back in the outbox: `ids` for some, `all: true` for every one (of `stream`, if given); same insert_id, so nothing doubles',
      body: replaySchema,
      response: replayResultSchema,
      errors: [400, 404],
      handle: async ({ body }) => {
        const r = await replay(ctx, body);
        await wake(jobs, r.streams);
        return r;
      },
    }),
  ];
}

/** With workers running, forwarding belongs to the stream's job queue: tell it there is work. */
async function wake(jobs: JobQueue | undefined, streamIds: string[]): Promise<void> {
  if (!jobs) return;
  for (const streamId of streamIds)
    await jobs.add(TASKS.forward, { streamId }, { queue: QUEUES.stream(streamId), jobKey: JOB_KEYS.forward(streamId) });
}
