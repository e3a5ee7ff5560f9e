import type { FastifyInstance } from 'fastify';
import { metrics, scrapeMetrics } from '../../telemetry/metrics';
import type { AdminDeps } from './auth';

/**
 * GET /metrics (Prometheus text format) and the webhook request counters. Like /healthz it
 * needs no token, so a scraper needs no admin credentials: it exposes counts and our own ids
 * only, never names, keys or user ids. Put it behind the network policy of your scrape setup.
 */
export async function registerMetrics(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    if (route?.startsWith('/hooks/')) {
      metrics.webhookRequests.inc({ route, status: String(reply.statusCode) });
      metrics.webhookDuration.observe({ route }, reply.elapsedTime / 1000);
    }
    done();
  });
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await scrapeMetrics(deps.ctx);
    return reply.type(contentType).send(body);
  });
}
