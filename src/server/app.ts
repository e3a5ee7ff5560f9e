import Fastify, { type FastifyInstance } from 'fastify';
import type { Context } from '../store';
import type { JobQueue } from '../jobs/port';
import { registerAmplitudeHooks } from './hooks/amplitude';
import { registerOneSignalHooks } from './hooks/onesignal';

export interface ServerDeps {
  ctx: Context;
  /** Where hooks hand work after storing it; absent in tests that drain work by hand. */
  jobs?: JobQueue;
  /** Largest accepted webhook body, bytes. */
  bodyLimit?: number;
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: deps.bodyLimit ?? 5 * 1024 * 1024 });
  app.get('/healthz', async () => {
    await deps.ctx.store.db.selectFrom('sources').select('id').limit(1).execute();
    return { status: 'ok', database: deps.ctx.store.dialect };
  });
  await registerAmplitudeHooks(app, deps);
  await registerOneSignalHooks(app, deps);
  return app;
}
