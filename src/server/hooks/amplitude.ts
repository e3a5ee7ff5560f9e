import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WEBHOOK_BODY_LIMIT_BYTES } from '../../connectors/amplitude/constants';
import { isAmpError } from '../../errors';
import { QUEUES, TASKS } from '../../jobs/port';
import { secretsEqual } from '../../store/secrets';
import { cohortWritableBy, notYourCohort, storeWebhook } from '../../sync/cohort-webhooks';
import { log } from '../../telemetry/logger';
import { bearerToken } from '../api/auth';
import type { ServerDeps } from '../app';
import { BoundedCache } from '../bounded-cache';
import { ID_IN_PATH, malformedIdMessage } from './common';
import { WebhookParsePool } from './parse-pool';

/**
 * POST /hooks/amplitude/cohorts/:sourceId — Amplitude's cohort-webhook destination.
 * Order of checks, so nothing bad is ever stored: source id (400 malformed, 404 unknown) → secret (401, before the body
 * is read) → size (413) → JSON (400) → payload fields (400, naming the field) → the cohort is the
 * source's (403) → insert-once → 200.
 * JSON and fields are checked on a parse worker for large bodies (parse-pool.ts).
 * Amplitude retries when the answer takes over ~1-2 s, so the 200 goes out as soon as the
 * message is durable; applying it to the ledger is a job ('webhook.apply').
 */

// Secrets are decrypted once per source and re-read after this long, so a rotated secret or a
// deleted source takes effect without a restart. Unknown ids are remembered too (a flood of one
// wrong URL costs no queries), in a bounded cache: any id can be sent without a secret.
const SECRET_CACHE_MS = 30_000;
const SECRET_CACHE_ENTRIES = 1_000;
// (source, cohort) pairs found writable by the source's webhook; the apply step checks again.
const OWNED_CACHE_MS = 30_000;
const OWNED_CACHE_ENTRIES = 10_000;

interface Params {
  sourceId: string;
}

export async function registerAmplitudeHooks(app: FastifyInstance, deps: ServerDeps): Promise<void> {
  const { ctx } = deps;
  const secrets = new BoundedCache<string, { secret: string | null }>(SECRET_CACHE_ENTRIES, SECRET_CACHE_MS);
  const owned = new BoundedCache<string, true>(OWNED_CACHE_ENTRIES, OWNED_CACHE_MS);

  async function secretFor(sourceId: string): Promise<string | null> {
    const hit = secrets.get(sourceId);
    if (hit) return hit.secret;
    const row = await ctx.store.db
      .selectFrom('sources')
      .select('webhook_secret_enc')
      .where('id', '=', sourceId)
      .executeTakeFirst();
    const secret = row ? ctx.secrets.decrypt(row.webhook_secret_enc) : null;
    secrets.set(sourceId, { secret });
    return secret;
  }

  async function mayWrite(sourceId: string, cohortId: string): Promise<boolean> {
    const key = `${sourceId}\u0000${cohortId}`;
    if (owned.get(key)) return true;
    const ok = await cohortWritableBy(ctx, sourceId, cohortId);
    if (ok) owned.set(key, true);
    return ok;
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
    // The body reaches the handler as bytes whatever its content type, so one size limit and one
    // JSON check apply to every body (a proxy or template that says text/plain changes nothing).
    // It is checked there (on a parse worker when large, prototype-poisoning keys included:
    // webhook-payload.ts) and stored as received.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
    registerRoute(scope);
  });

  function registerRoute(app: FastifyInstance): void {
    app.post<{ Params: Params }>('/hooks/amplitude/cohorts/:sourceId', {
      bodyLimit,
      onRequest: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const { sourceId } = req.params;
        if (!ID_IN_PATH.test(sourceId))
          return reply.code(400).send({ error: 'invalid_input', message: malformedIdMessage('source') });
        const secret = await secretFor(sourceId);
        if (secret === null) {
          return reply
            .code(404)
            .send({ error: 'not_found', message: 'no such Amplitude source: check the webhook URL' });
        }
        const presented = bearerToken(req);
        if (presented === undefined || !secretsEqual(presented, secret)) {
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
        if (isAmpError(err) && err.kind !== 'internal') return reply.code(err.httpStatus).send(err.toJSON());
        // Requests still parsing when the server closes fail with the pool: expected, not an error.
        if (!parsePool.isClosed) log.error({ err: err.message }, 'amplitude webhook failed');
        // 5xx makes Amplitude retry, which is what we want when the store is unavailable.
        return reply
          .code(503)
          .send({ error: 'unavailable', message: 'the message could not be stored; it will be retried by Amplitude' });
      },
      handler: async (req: FastifyRequest<{ Params: Params }>, reply: FastifyReply) => {
        const sourceId = req.params.sourceId;
        const { message, body } = await parsePool.check(req.body as Buffer, Date.now());
        if (!(await mayWrite(sourceId, message.cohort_id))) throw notYourCohort(sourceId, message.cohort_id);
        const stored = await storeWebhook(ctx, sourceId, message, body);
        if (stored.inboxId !== null && deps.jobs) {
          try {
            // One queue per source: messages of a source apply in arrival order.
            await deps.jobs.add(TASKS.applyWebhook, { inboxId: stored.inboxId }, { queue: QUEUES.webhooks(sourceId) });
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
