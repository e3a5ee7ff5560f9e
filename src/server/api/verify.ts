import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isAmpError } from '../../errors';
import { enqueueDelivery } from '../../jobs/tasks';
import type { Context } from '../../store';
import {
  DEFAULT_VERIFY_SAMPLE,
  DRIFT_KINDS,
  finishVerification,
  getVerification,
  listVerifications,
  MAX_VERIFY_SAMPLE,
  startVerification,
  type VerificationView,
} from '../../sync/verify';
import { log } from '../../telemetry/logger';
import type { AdminDeps } from './auth';
import { parseOr400 } from './errors';
import { idParam } from './schemas';

/**
 * Read-back verification under /api/v1: start one (it reads one user per second, so the answer
 * is 202 with the verification running; poll it), list a sync's, read one.
 */

export const verifyBody = z
  .object({
    sample: z
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(MAX_VERIFY_SAMPLE, `must be at most ${MAX_VERIFY_SAMPLE}`)
      .default(DEFAULT_VERIFY_SAMPLE)
      .describe('users read back, at one per second'),
    repair: z
      .boolean({ error: 'must be true or false' })
      .default(false)
      .describe('mark drifted users pending so the next delivery fixes them'),
  })
  .strict();

export const verificationsQuery = z.object({
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(100, 'must be at most 100')
    .default(20),
});

export const verificationSchema = z.object({
  id: z.string(),
  sync_id: z.string(),
  status: z.enum(['running', 'completed', 'failed', 'abandoned']),
  trigger: z.string(),
  tag_key: z.string().nullable(),
  sample_size: z.number().int(),
  checked: z.number().int().describe('users read back'),
  matched: z.number().int(),
  drifted: z.number().int(),
  skipped: z.number().int().describe('read back while a delivery changed their row: not compared'),
  repaired: z.number().int().describe('drifted users marked pending'),
  match_rate: z.number().nullable().describe('matched / (matched + drifted), 0..1'),
  drift: z.array(
    z.object({
      external_id: z.string(),
      kind: z.enum(DRIFT_KINDS),
      expected: z.string().nullable().describe('the tag value the ledger expects; null = no tag'),
      actual: z.string().nullable().describe('what OneSignal holds; null = no tag or no user'),
    }),
  ),
  error: z.string().nullable(),
  started_at: z.number().int(),
  finished_at: z.number().int().nullable(),
});

/**
 * Verifications this process is finishing in the background. The server aborts them when it
 * closes (each is then recorded failed: cancelled) instead of reading on after its database closed.
 */
const inFlight = new WeakMap<Context, Map<AbortController, Promise<void>>>();

function inFlightOf(ctx: Context): Map<AbortController, Promise<void>> {
  const known = inFlight.get(ctx);
  if (known) return known;
  const m = new Map<AbortController, Promise<void>>();
  inFlight.set(ctx, m);
  return m;
}

export async function stopBackgroundVerifications(ctx: Context): Promise<void> {
  const m = inFlightOf(ctx);
  for (const c of m.keys()) c.abort(new Error('the server is stopping'));
  await Promise.all(m.values());
}

/** Starts a verification and finishes it in the background; with repair and a job queue, a delivery follows. */
export async function startVerifyAction(deps: AdminDeps, syncId: string, body: unknown): Promise<VerificationView> {
  const input = parseOr400(verifyBody, body ?? {}, 'verify request');
  const { ctx } = deps;
  const started = await startVerification(ctx, syncId, { sample: input.sample, trigger: 'api' });
  const abort = new AbortController();
  const done = finishVerification(ctx, started, { repair: input.repair, signal: abort.signal })
    .then(async (v) => {
      if (v.repaired > 0 && deps.jobs) await enqueueDelivery(ctx, deps.jobs, started.destination.id);
    })
    .catch((e: unknown) => {
      if (!isAmpError(e) || e.kind === 'internal') log.error({ err: e, syncId }, 'verification failed');
    })
    .finally(() => inFlightOf(ctx).delete(abort));
  inFlightOf(ctx).set(abort, done);
  return getVerification(ctx, started.id);
}

export function registerVerifyRoutes(api: FastifyInstance, deps: AdminDeps): void {
  const { ctx } = deps;
  api.addHook('onClose', () => stopBackgroundVerifications(ctx));
  api.post('/syncs/:id/verify', async (req, reply) =>
    reply.code(202).send(await startVerifyAction(deps, parseOr400(idParam, req.params, 'path').id, req.body)),
  );
  api.get('/syncs/:id/verifications', async (req) => {
    const { id } = parseOr400(idParam, req.params, 'path');
    const q = parseOr400(verificationsQuery, req.query, 'query');
    return { verifications: await listVerifications(ctx, id, q.limit) };
  });
  api.get('/verifications/:id', async (req) => getVerification(ctx, parseOr400(idParam, req.params, 'path').id));
}

type Json = Record<string, unknown>;

const json = (s: z.ZodType, io: 'input' | 'output' = 'output'): Json =>
  z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;
const content = (schema: Json) => ({ 'application/json': { schema } });
const errors = (...codes: number[]): Json =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: 'error', content: content({ $ref: '#/components/schemas/Error' }) }]),
  );
const idPath = (what: string) => ({
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: `${what} id`,
});
const op = (summary: string, extra: Json): Json => ({
  summary,
  security: [{ bearer: [] }],
  tags: ['verify'],
  ...extra,
});

/** The OpenAPI paths of these routes, from the zod schemas above. */
export function verifyPaths(): Json {
  const one = json(verificationSchema);
  const limit = (json(verificationsQuery, 'input') as { properties: Record<string, Json> }).properties.limit;
  return {
    '/syncs/{id}/verify': {
      post: op("Read a random sample of the sync's users back from OneSignal and compare their tags with the ledger", {
        parameters: [idPath('sync')],
        requestBody: { required: false, content: content(json(verifyBody, 'input')) },
        responses: {
          '202': { description: 'the verification, running; poll /verifications/{id}', content: content(one) },
          ...errors(400, 401, 404, 409),
        },
      }),
    },
    '/syncs/{id}/verifications': {
      get: op("A sync's verifications, newest first", {
        parameters: [idPath('sync'), { name: 'limit', in: 'query', required: false, schema: limit }],
        responses: {
          '200': {
            description: '`{verifications}`',
            content: content(json(z.object({ verifications: z.array(verificationSchema) }))),
          },
          ...errors(400, 401, 404),
        },
      }),
    },
    '/verifications/{id}': {
      get: op('One verification: match rate and drifted users', {
        parameters: [idPath('verification')],
        responses: { '200': { description: 'verification', content: content(one) }, ...errors(401, 404) },
      }),
    },
  };
}
