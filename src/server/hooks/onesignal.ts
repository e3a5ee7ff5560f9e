import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AmpError, toAmpError } from '../../errors';
import { receiveEvents } from '../../events/receive';
import { type CachedStream, cachedStream, cachedStreamNow } from '../../events/streams';
import { createWaker } from '../../events/wake';
import { secretsEqual } from '../../store/secrets';
import { log } from '../../telemetry/logger';
import { bearerToken } from '../api/auth';
import type { ServerDeps } from '../app';
import { ID_IN_PATH, malformedIdMessage } from './common';

/**
 * POST /hooks/onesignal/events/:streamId — OneSignal Event Streams (DESIGN §5).
 * OneSignal signs nothing (reference onesignal-api.md §7.1), so the stream's secret travels as
 * `Authorization: Bearer <webhook_secret>`, set in the stream's headers. Checked before the
 * body is read. OneSignal disables streams that answer slowly: store and answer, nothing else.
 */
declare module 'fastify' {
  interface FastifyRequest {
    ampStream?: CachedStream;
  }
}

function fail(reply: FastifyReply, err: AmpError): FastifyReply {
  return reply.code(err.httpStatus).send(err.toJSON());
}

/**
 * Anything but a sender's mistake: a 503, so OneSignal sends the events again, with a body that
 * says so and nothing else (a database's own message names tables and values; the log has it).
 */
function unavailable(reply: FastifyReply, e: unknown, streamId?: string): FastifyReply {
  log.error({ err: toAmpError(e).message, stream: streamId }, 'storing OneSignal events failed');
  return reply.code(503).send({
    error: 'unavailable',
    message: 'the events could not be stored now; OneSignal sends them again',
  });
}

export async function registerOneSignalHooks(app: FastifyInstance, deps: ServerDeps): Promise<void> {
  const waker = createWaker(deps.jobs, (e) =>
    log.warn({ err: toAmpError(e).message }, 'could not enqueue stream.forward'),
  );
  app.addHook('onClose', async () => waker.close());

  await app.register(async (scope) => {
    // Our own parser: any content type (OneSignal's default may not say JSON), and a readable
    // 400 for a body that is not JSON instead of the framework's generic one.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

    scope.setErrorHandler((error: Error & { code?: string; statusCode?: number }, _req, reply) => {
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
        return fail(
          reply,
          new AmpError(
            'payload_too_large',
            `the body is larger than the ${deps.bodyLimit ?? 5 * 1024 * 1024}-byte limit; send fewer events per request`,
          ),
        );
      }
      if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
        return fail(reply, new AmpError('invalid_input', error.message));
      }
      return unavailable(reply, error);
    });

    // A callback hook, not an async one: the stream is cached, so the usual request authenticates
    // without a promise; an async hook would add a promise and a microtask turn to every request
    // on the receiver's hottest path.
    const authenticate = (
      req: FastifyRequest<{ Params: { streamId: string } }>,
      reply: FastifyReply,
      done: () => void,
    ): void => {
      const { streamId } = req.params;
      const deny = (e: AmpError): void => void fail(reply, e);
      if (!ID_IN_PATH.test(streamId)) {
        deny(new AmpError('invalid_input', malformedIdMessage('stream')));
        return;
      }
      const presented = bearerToken(req);
      if (presented === undefined) {
        deny(
          new AmpError(
            'unauthorized',
            'missing "Authorization: Bearer <webhook_secret>" header (set it in the OneSignal Event Stream headers)',
          ),
        );
        return;
      }
      const check = (stream: CachedStream | undefined): void => {
        if (!stream) deny(new AmpError('not_found', `no event stream ${streamId}`));
        else if (!secretsEqual(presented, stream.webhookSecret))
          deny(new AmpError('unauthorized', 'wrong webhook secret for this stream'));
        else {
          req.ampStream = stream;
          done();
        }
      };
      const hit = cachedStreamNow(deps.ctx, streamId);
      if (hit) check(hit);
      else cachedStream(deps.ctx, streamId).then(check, (e: unknown) => void unavailable(reply, e, streamId));
    };

    scope.post<{ Params: { streamId: string } }>(
      '/hooks/onesignal/events/:streamId',
      { onRequest: authenticate, ...(deps.bodyLimit ? { bodyLimit: deps.bodyLimit } : {}) },
      async (req, reply) => {
        const raw = req.body as string | undefined;
        if (!raw || raw.length === 0)
          return fail(
            reply,
            new AmpError('invalid_input', 'the body is empty: send one OneSignal event as JSON, or an array of them'),
          );
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch (e) {
          return fail(
            reply,
            new AmpError(
              'invalid_input',
              `the body is not JSON (${(e as Error).message}); check the Liquid template quotes strings but not {{ user.tags }}`,
            ),
          );
        }
        if (typeof body !== 'object' || body === null) {
          return fail(
            reply,
            new AmpError('invalid_input', 'the body must be a JSON object (one event) or an array of events'),
          );
        }
        const stream = req.ampStream!;
        try {
          const result = await receiveEvents(deps.ctx, stream, body);
          if (result.accepted > 0) waker.wake(stream.row.id);
          return reply.code(200).send(result);
        } catch (e) {
          const err = toAmpError(e);
          if (err.kind === 'usage') return fail(reply, err);
          return unavailable(reply, e, stream.row.id);
        }
      },
    );
  });
}
