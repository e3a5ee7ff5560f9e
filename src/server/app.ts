import { isIP } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { AmpError } from '../errors';
import type { JobQueue } from '../jobs/port';
import type { Context } from '../store';
import { VERSION } from '../telemetry/version';
import { registerApi } from './api';
import { assertAdminToken } from './api/auth';
import { registerMetrics } from './api/metrics-route';
import { FailureThrottle } from './api/throttle';
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
  /** Overrides of SERVER_TIMEOUTS (tests use short ones). */
  timeouts?: Partial<ServerTimeouts>;
  /** Which proxies' X-Forwarded-* headers to believe; default AMPSIGNAL_TRUST_PROXY (none). */
  trustProxy?: TrustProxy;
}

/** fastify's trustProxy: every proxy, the first N hops, or the proxies' addresses / CIDR ranges. */
export type TrustProxy = boolean | string[] | ((address: string, hop: number) => boolean);

// proxy-addr's names for address ranges, accepted beside addresses and CIDR ranges.
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * AMPSIGNAL_TRUST_PROXY: unset or `false` (the client's own address and protocol count), `true`
 * (any proxy), a hop count (`1`), or comma-separated proxy addresses or CIDR ranges
 * (`10.0.0.0/8,127.0.0.1`, or `loopback`). Throws invalid_input naming the bad entry.
 */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = value?.trim() ?? '';
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    return (_address, hop) => hop < hops;
  }
  const entries = v.split(',').map((e) => e.trim());
  for (const e of entries) {
    const [addr, bits, extra] = e.split('/');
    const family = isIP(addr ?? '');
    const okBits = bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!(PROXY_RANGE_NAMES.has(e) || (family !== 0 && okBits && extra === undefined))) {
      throw new AmpError(
        'invalid_input',
        `AMPSIGNAL_TRUST_PROXY: "${e}" is not true, false, a hop count, an IP address, a CIDR range or loopback/linklocal/uniquelocal`,
      );
    }
  }
  return entries;
}

export interface ServerTimeouts {
  /** Until a request's headers are all in. */
  headersMs: number;
  /** Until the whole request, body included, is in. */
  requestMs: number;
  /** A connection that sends and receives nothing for this long is closed. */
  idleMs: number;
}

/**
 * Every connection is bounded in time, so trickling clients cannot hold sockets (and memory) for
 * ever: webhook senders and browsers send a request in well under a second; 30 s leaves a 10 MB
 * cohort webhook room on a slow link. The idle limit is above fastify's 72 s keep-alive, which
 * ends idle keep-alive connections itself.
 */
export const SERVER_TIMEOUTS: ServerTimeouts = { headersMs: 10_000, requestMs: 30_000, idleMs: 75_000 };

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  assertAdminToken(deps);
  const t = { ...SERVER_TIMEOUTS, ...deps.timeouts };
  const app = Fastify({
    logger: false,
    trustProxy: deps.trustProxy ?? parseTrustProxy(process.env.AMPSIGNAL_TRUST_PROXY),
    bodyLimit: deps.bodyLimit ?? 5 * 1024 * 1024,
    requestTimeout: t.requestMs,
    connectionTimeout: t.idleMs,
    // Node checks the two limits above on this interval (30 s by default, which would add up to
    // half a minute to each).
    http: { headersTimeout: t.headersMs, connectionsCheckingInterval: Math.min(1_000, t.headersMs) },
  });
  // An answer sent before the request body was read (401, 404, 413 from a hook) ends the
  // connection: otherwise node keeps reading whatever the client trickles in, to reuse it.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!req.raw.complete) void reply.header('connection', 'close');
    done(null, payload);
  });
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
    return { status: 'ok', version: VERSION, database: deps.ctx.store.engine.name };
  });
  // Before the hooks, so its onResponse hook counts their requests.
  await registerMetrics(app, deps);
  await registerAmplitudeHooks(app, deps);
  await registerOneSignalHooks(app, deps);
  const admin = { ...deps, tokenThrottle: new FailureThrottle() };
  await registerApi(app, admin);
  await registerUi(app, admin);
  return app;
}
