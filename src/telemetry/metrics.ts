import { Counter, Histogram, Registry } from 'prom-client';

/**
 * Prometheus metrics. `registry` is ours (never prom-client's global default, which other
 * libraries may also write to) and holds the counters a process increments. State that lives in
 * the database is read at scrape time by the metrics route (server/api/metrics-scrape.ts).
 */
export const registry = new Registry();

export const metrics = {
  /** Webhook requests answered, by route pattern and HTTP status. */
  webhookRequests: new Counter({
    name: 'ampsignal_webhook_requests_total',
    help: 'Webhook requests answered, by route and HTTP status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  }),
  /** Admin API requests answered, by route pattern and HTTP status. */
  apiRequests: new Counter({
    name: 'ampsignal_api_requests_total',
    help: 'Admin API requests answered, by route and HTTP status',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  }),
  /** Seconds spent answering webhook requests (the 1-2 s budget Amplitude gives us). */
  webhookDuration: new Histogram({
    name: 'ampsignal_webhook_request_duration_seconds',
    help: 'Time to answer a webhook request',
    labelNames: ['route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [registry],
  }),
};
