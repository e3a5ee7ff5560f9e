import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAmpError } from '../../errors';
import { WEBHOOK_BODY_LIMIT_BYTES } from '../../connectors/amplitude/constants';
import { parseWebhookPayload, storeWebhook } from '../../connectors/amplitude/webhooks';
import { secretsEqual } from '../../store/secrets';
import { log } from '../../telemetry/logger';
import type { ServerDeps } from '../app';

/**
 * POST /hooks/amplitude/cohorts/:sourceId — Amplitude's cohort-webhook destination.
 * Order of checks, so nothing bad is ever stored: secret (401, before the body is read) →
 * size (413) → JSON (400) → payload fields (400, naming the field) → insert-once → 200.
 * Amplitude retries when the answer takes over ~1-2 s, so the 200 goes out as soon as the
 * message is durable; applying it to the ledger is a job ('webhook.apply').
 */

// Secrets are decrypted once per source and re-read after this long, so a rotated secret or a
// deleted source takes effect without a restart.
const SECRET_CACHE_MS = 30_000;

interface Params {
  sourceId: string;
}

// The body text, kept by the parser so the inbox stores what Amplitude sent without re-encoding it.
const RAW_BODY = Symbol('rawBody');
type WithRawBody = { [RAW_BODY]?: string };

export async function registerAmplitudeHooks(app: FastifyInstance, deps: ServerDeps): Promise<void> {
  const { ctx } = deps;
  const cache = new Map<string, { secret: string | null; until: number }>();

  async function secretFor(sourceId: string): Promise<string | null> {
    const hit = cache.get(sourceId);
    if (hit && hit.until > Date.now()) return hit.secret;
    const row = await ctx.store.db.selectFrom('sources').select('webhook_secret_enc').where('id', '=', sourceId).executeTakeFirst();
    const secret = row ? ctx.secrets.decrypt(row.webhook_secret_enc) : null;
    cache.set(sourceId, { secret, until: Date.now() + SECRET_CACHE_MS });
    return secret;
  }

  const bodyLimit = deps.bodyLimit ?? WEBHOOK_BODY_LIMIT_BYTES;

  // Encapsulated, so the JSON parser below applies to this route only.
  await app.register(async (scope) => {
    // fastify's default parser (secure-json-parse) scans every body with two regular expressions
    // for prototype-poisoning keys, a large share of a 1,000-user message's cost (bench
    // webhook_ack). Plain JSON.parse is exactly as safe for a body that cannot spell such a
    // key: one without "__proto__", "constructor" or any \u escape (which could spell them).
    // Anything else goes through the default parser, which answers 400 for poisoned keys.
    const secureParser = scope.getDefaultJsonParser('error', 'error');
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'string' }, (req, text, done) => {
      const body = text as string;
      (req as WithRawBody)[RAW_BODY] = body;
      if (body.length === 0 || body.includes('\\u') || body.includes('__proto__') || body.includes('constructor')) {
        return secureParser(req, body, done);
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch (e) {
        return done(Object.assign(e as Error, { statusCode: 400 }), undefined);
      }
      done(null, parsed);
    });
    registerRoute(scope);
  });

  function registerRoute(app: FastifyInstance): void {
    app.post<{ Params: Params }>('/hooks/amplitude/cohorts/:sourceId', {
      bodyLimit,
      onRequest: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const secret = await secretFor(req.params.sourceId);
        if (secret === null) {
          return reply.code(404).send({ error: 'not_found', message: `no Amplitude source ${req.params.sourceId}: check the webhook URL` });
        }
        const header = req.headers.authorization ?? '';
        const m = /^Bearer\s+(.+)$/i.exec(header.trim());
        if (!m || !secretsEqual(m[1]!.trim(), secret)) {
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer')
            .send({ error: 'unauthorized', message: 'missing or wrong webhook secret: send "Authorization: Bearer <webhook_secret>" as a custom header' });
        }
      },
      errorHandler: (err: FastifyError, _req, reply) => {
        if (err.statusCode === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
          return reply.code(413).send({ error: 'payload_too_large', message: `the body is over ${bodyLimit} bytes` });
        }
        if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
          return reply.code(415).send({ error: 'invalid_input', message: 'send the payload as Content-Type: application/json' });
        }
        if (err.statusCode === 400 || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) {
          return reply.code(400).send({ error: 'invalid_input', message: `the body is not valid JSON: ${err.message}` });
        }
        if (isAmpError(err)) return reply.code(err.httpStatus).send(err.toJSON());
        log.error({ err: err.message }, 'amplitude webhook failed');
        // 5xx makes Amplitude retry, which is what we want when the store is unavailable.
        return reply.code(503).send({ error: 'unavailable', message: 'the message could not be stored; it will be retried by Amplitude' });
      },
      handler: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const sourceId = req.params.sourceId;
        const payload = parseWebhookPayload(req.body);
        const stored = await storeWebhook(ctx, sourceId, payload, (req as WithRawBody)[RAW_BODY]);
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
          users: payload.users.length,
        });
      },
    });
  }
}
