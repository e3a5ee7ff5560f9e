import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WEBHOOK_BODY_LIMIT_BYTES } from '../../connectors/amplitude/constants';
import { storeWebhook } from '../../connectors/amplitude/webhooks';
import { isAmpError } from '../../errors';
import { secretsEqual } from '../../store/secrets';
import { log } from '../../telemetry/logger';
import type { ServerDeps } from '../app';
import { WebhookParsePool } from './parse-pool';

/**
 * POST /hooks/amplitude/cohorts/:sourceId — Amplitude's cohort-webhook destination.
 * Order of checks, so nothing bad is ever stored: secret (401, before the body is read) →
 * size (413) → JSON (400) → payload fields (400, naming the field) → insert-once → 200.
 * JSON and fields are checked on a parse worker for large bodies (parse-pool.ts).
 * Amplitude retries when the answer takes over ~1-2 s, so the 200 goes out as soon as the
 * message is durable; applying it to the ledger is a job ('webhook.apply').
 */

// Secrets are decrypted once per source and re-read after this long, so a rotated secret or a
// deleted source takes effect without a restart.
const SECRET_CACHE_MS = 30_000;

interface Params {
  sourceId: string;
}

export async function registerAmplitudeHooks(app: FastifyInstance, deps: ServerDeps): Promise<void> {
  const { ctx } = deps;
  const cache = new Map<string, { secret: string | null; until: number }>();

  async function secretFor(sourceId: string): Promise<string | null> {
    const hit = cache.get(sourceId);
    if (hit && hit.until > Date.now()) return hit.secret;
    const row = await ctx.store.db
      .selectFrom('sources')
      .select('webhook_secret_enc')
      .where('id', '=', sourceId)
      .executeTakeFirst();
    const secret = row ? ctx.secrets.decrypt(row.webhook_secret_enc) : null;
    cache.set(sourceId, { secret, until: Date.now() + SECRET_CACHE_MS });
    return secret;
  }

  const bodyLimit = deps.bodyLimit ?? WEBHOOK_BODY_LIMIT_BYTES;

  const parsePool = new WebhookParsePool();
  // A listening server expects webhooks; one built for inject() in tests starts workers only if it needs them.
  app.addHook('onListen', (done) => {
    parsePool.warm();
    done();
  });
  app.addHook('onClose', () => parsePool.close());

  // Encapsulated, so the parser below applies to this route only.
  await app.register(async (scope) => {
    // The body reaches the handler as bytes: it is checked there (on a parse worker when large,
    // prototype-poisoning keys included: webhook-payload.ts) and stored as received.
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    registerRoute(scope);
  });

  function registerRoute(app: FastifyInstance): void {
    app.post<{ Params: Params }>('/hooks/amplitude/cohorts/:sourceId', {
      bodyLimit,
      onRequest: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const secret = await secretFor(req.params.sourceId);
        if (secret === null) {
          return reply
            .code(404)
            .send({ error: 'not_found', message: `no Amplitude source ${req.params.sourceId}: check the webhook URL` });
        }
        const header = req.headers.authorization ?? '';
        const m = /^Bearer\s+(.+)$/i.exec(header.trim());
        if (!m || !secretsEqual(m[1]!.trim(), secret)) {
          return reply.code(401).header('www-authenticate', 'Bearer').send({
            error: 'unauthorized',
            message:
              'missing or wrong webhook secret: send "Authorization: Bearer <webhook_secret>" as a custom header',
          });
        }
      },
      errorHandler: (err: FastifyError, _req, reply) => {
        if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
          return reply.code(413).send({ error: 'payload_too_large', message: `the body is over ${bodyLimit} bytes` });
        }
        if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
          return reply
            .code(415)
            .send({ error: 'invalid_input', message: 'send the payload as Content-Type: application/json' });
        }
        if (err.statusCode === 400 || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
          return reply
            .code(400)
            .send({ error: 'invalid_input', message: `the body is not valid JSON: ${err.message}` });
        }
        if (isAmpError(err)) return reply.code(err.httpStatus).send(err.toJSON());
        log.error({ err: err.message }, 'amplitude webhook failed');
        // 5xx makes Amplitude retry, which is what we want when the store is unavailable.
        return reply
          .code(503)
          .send({ error: 'unavailable', message: 'the message could not be stored; it will be retried by Amplitude' });
      },
      handler: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const sourceId = req.params.sourceId;
        const { message, body } = await parsePool.check(req.body as Buffer);
        const stored = await storeWebhook(ctx, sourceId, message, body);
        if (stored.inboxId !== null && deps.jobs) {
          try {
            // One queue per source: messages of a source apply in arrival order.
            await deps.jobs.add('webhook.apply', { inboxId: stored.inboxId }, { queue: `webhooks:${sourceId}` });
          } catch (e) {
            // The message is durable; applyPendingWebhooks (the sweep) picks it up.
            log.warn({ err: (e as Error).message, inboxId: stored.inboxId }, 'could not enqueue webhook.apply');
          }
        }
        return reply.code(200).send({
          ok: true,
          message_id: stored.messageId,
          duplicate: stored.duplicate,
          ...(stored.inboxId !== null ? { inbox_id: stored.inboxId } : {}),
          users: message.users,
        });
      },
    });
  }
}
