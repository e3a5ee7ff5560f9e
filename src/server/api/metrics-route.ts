import type { FastifyInstance } from 'fastify';
import { metrics } from '../../telemetry/metrics';
import type { AdminDeps } from './auth';
import { scrapeMetrics } from './metrics-scrape';

/**
 * GET /metrics (Prometheus text format) and the webhook request counters. Like /healthz it
 * needs no token, so a scraper needs no admin credentials: it exposes counts and our own ids
 * only, never names, keys or user ids. Put it behind the network policy of your scrape setup.
 */
export async function registerMetrics(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  // Labelled children are looked up once per (route, status): prom-client otherwise hashes the
  // label set on every call, on the webhook hot paths (bench ingest).
  const counters = new Map<string, ReturnType<typeof metrics.webhookRequests.labels>>();
  const timers = new Map<string, ReturnType<typeof metrics.webhookDuration.labels>>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    if (route?.startsWith('/hooks/')) {
      const key = `${reply.statusCode} ${route}`;
      let counter = counters.get(key);
      if (!counter) {
        counter = metrics.webhookRequests.labels({ route, status: String(reply.statusCode) });
        counters.set(key, counter);
      }
      let timer = timers.get(route);
      if (!timer) {
        timer = metrics.webhookDuration.labels({ route });
        timers.set(route, timer);
      }
      counter.inc();
      timer.observe(reply.elapsedTime / 1000);
    }
    done();
  });
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await scrapeMetrics(deps.ctx);
    return reply.type(contentType).send(body);
  });
}
