import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { metrics } from '../../telemetry/metrics';
import { registerAlertRoutes } from './alerts';
import { type AdminDeps, bearerToken, checkToken, configuredToken, TOKEN_HELP } from './auth';
import { configRoutes } from './config';
import { destinationRoutes } from './destinations';
import { errorResponse } from './errors';
import { historyRoutes, registerExportRoute } from './history';
import { openApiDocument } from './openapi';
import { type ApiRoute, registerRoutes } from './routes';
import { runRoutes } from './runs';
import { cohortRoutes, sourceRoutes } from './sources';
import { streamRoutes } from './streams';
import { syncRoutes } from './syncs';
import { retryAfterSeconds } from './throttle';
import { registerVerifyRoutes } from './verify';

export const API_PREFIX = '/api/v1';

/** Every route declared with its schemas (routes.ts): registered and documented from one list. */
export function apiRoutes(deps: AdminDeps): ApiRoute[] {
  return [
    ...sourceRoutes(deps.ctx),
    ...cohortRoutes(deps.ctx),
    ...destinationRoutes(deps.ctx),
    ...streamRoutes(deps.ctx, deps.jobs),
    ...syncRoutes(deps.ctx, deps.jobs),
    ...runRoutes(deps.ctx, deps.jobs),
    ...historyRoutes(deps.ctx),
    ...configRoutes(deps.ctx),
  ];
}

/**
 * The admin API under /api/v1: bearer-token auth on every route but the OpenAPI document,
 * zod-validated input, JSON errors `{error, message}`. Reads query the tables directly;
 * actions call the owning modules in src/app.
 */
export async function registerApi(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  await app.register(
    async (api) => {
      api.setErrorHandler((err, _req, reply) => {
        const { status, body } = errorResponse(err);
        void reply.code(status).type('application/json').send(body);
      });
      api.setNotFoundHandler((req, reply) => {
        void reply
          .code(404)
          .send({ error: 'not_found', message: `no API route ${req.method} ${req.url.split('?')[0]}` });
      });
      api.addHook('onResponse', async (req, reply) => {
        metrics.apiRequests.inc({ route: req.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) });
      });
      api.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        if (req.routeOptions.url === `${API_PREFIX}/openapi.json`) return;
        const token = configuredToken(deps);
        if (!token) return reply.code(503).send({ error: 'admin_token_not_configured', message: TOKEN_HELP });
        const check = checkToken(deps, req, bearerToken(req), token);
        if (check.ok) return;
        if (check.blockedMs > 0) {
          const seconds = retryAfterSeconds(check.blockedMs);
          return reply
            .code(429)
            .header('retry-after', String(seconds))
            .send({
              error: 'too_many_attempts',
              message: `too many wrong admin tokens from this address; try again in ${seconds} s`,
            });
        }
        return reply.code(401).header('www-authenticate', 'Bearer realm="ampsignal"').send({
          error: 'unauthorized',
          message: 'send the admin token as `Authorization: Bearer <token>` (AMPSIGNAL_ADMIN_TOKEN)',
        });
      });

      api.get('/openapi.json', async () => openApiDocument(apiRoutes(deps)));

      const { ctx } = deps;
      registerRoutes(api, apiRoutes(deps));
      registerExportRoute(api, ctx);

      registerAlertRoutes(api, ctx);
      registerVerifyRoutes(api, deps);
    },
    { prefix: API_PREFIX },
  );
}
