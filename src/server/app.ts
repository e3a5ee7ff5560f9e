import Fastify, { type FastifyInstance } from 'fastify';
import type { JobQueue } from '../jobs/port';
import type { Context } from '../store';
import { registerApi } from './api';
import { registerMetrics } from './api/metrics-route';
import { registerAmplitudeHooks } from './hooks/amplitude';
import { registerOneSignalHooks } from './hooks/onesignal';
import { registerUi } from './ui';

export interface ServerDeps {
  ctx: Context;
  /** Where hooks hand work after storing it; absent in tests that drain work by hand. */
  jobs?: JobQueue;
  /** Largest accepted webhook body, bytes. */
  bodyLimit?: number;
  /** Admin token for /api/v1 and the UI; default AMPSIGNAL_ADMIN_TOKEN (none: both answer 503). */
  adminToken?: string;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimit ?? 5 * 1024 * 1024 });
  // Graceful close: fastify ends idle keep-alive connections when close() starts, but a request
  // already in flight then answers on a connection that stays open, and the server would wait for
  // it until the keep-alive timeout (72 s). Until the server has closed, connections are ended as
  // soon as they fall idle (a timer, not a per-request hook: the webhook routes are hot paths).
  let idleSweep: NodeJS.Timeout | undefined;
  app.addHook('preClose', (done) => {
    idleSweep = setInterval(() => app.server.closeIdleConnections(), 25).unref();
    done();
  });
  app.addHook('onClose', (_app, done) => {
    clearInterval(idleSweep);
    done();
  });
  app.get('/healthz', async () => {
    await deps.ctx.store.db.selectFrom('sources').select('id').limit(1).execute();
    return { status: 'ok', database: deps.ctx.store.dialect };
  });
  // Before the hooks, so its onResponse hook counts their requests.
  await registerMetrics(app, deps);
  await registerAmplitudeHooks(app, deps);
  await registerOneSignalHooks(app, deps);
  await registerApi(app, deps);
  await registerUi(app, deps);
  return app;
}
