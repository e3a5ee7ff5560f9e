import Fastify from 'fastify';
import { z } from 'zod';
import { AmpError } from '../../errors';
import { type CohortStats, CohortsHalf, type CohortView, type Member, type Project } from './cohorts';
import { type EventStats, EventsHalf, type StoredEvent } from './events';
import {
  type AmplitudeEmulatorOptions,
  type CohortInput,
  cohortInputSchema,
  emulatorOptionsSchema,
  FaultPlan,
  type FaultsInput,
  faultsInputSchema,
  type MemberInput,
  makeRandom,
  memberSchema,
  splitFaults,
} from './options';
import { type WebhookAttempt, WebhookPusher } from './webhooks';

export type {
  AmplitudeEmulatorOptions,
  CohortInput,
  CohortView,
  FaultsInput,
  Member,
  MemberInput,
  StoredEvent,
  WebhookAttempt,
};

export interface AmplitudeEmulatorStats {
  cohorts: CohortStats;
  events: EventStats;
  webhooks: { delivered: number; failed: number; duplicates: number; pending: number; attempts: number };
}

export interface AmplitudeEmulator {
  url: string;
  projects: Array<{ apiKey: string; secretKey: string; appId: number }>;
  close(): Promise<void>;
  /** Forgets cohorts, events, stats, queued webhooks and scripted answers; restores the start-up faults. */
  reset(): void;
  setFaults(f: FaultsInput): void;
  cohorts: {
    upsert(c: CohortInput): CohortView;
    addMembers(cohortId: string, members: MemberInput[]): { added: number };
    removeMembers(cohortId: string, userIds: string[]): { removed: number };
    members(cohortId: string): Member[];
    list(apiKey?: string): CohortView[];
    downloads(apiKey?: string): number;
    /** Scripts the next `count` cohort-API answers (status 0 = drop the connection). */
    forceNext(status: number, body?: unknown, count?: number): void;
    expireRedirects(): void;
  };
  events: {
    list(apiKey?: string): StoredEvent[];
    /** Scripts the next `count` event-API answers (status 0 = drop); `ingest` stores the batch first. */
    forceNext(status: number, body?: unknown, count?: number, opts?: { ingest?: boolean }): void;
  };
  /** Webhook messages queued, in flight or waiting to be retried. */
  pendingWebhooks(): number;
  /** Every webhook attempt so far, in order. */
  webhookLog(): WebhookAttempt[];
  /** Resolves when no webhook is pending (retries exhausted count as settled). */
  webhooksIdle(timeoutMs?: number): Promise<void>;
  /** Called after every webhook attempt; returns an unsubscribe function. */
  onWebhook(listener: (a: WebhookAttempt) => void): () => void;
  stats(): AmplitudeEmulatorStats;
}

/**
 * A fake of Amplitude's Behavioral Cohorts API (with cohort-webhook push) and HTTP V2 / Batch
 * event ingestion, on one fastify server.
 *
 * Vendor routes: GET /api/3/cohorts, GET /api/5/cohorts/request/:id, GET /api/5/cohorts/request-status/:rid,
 * GET /api/5/cohorts/request/:rid/file (inline gzip or 302 → /_s3/:token), POST /2/httpapi, POST /batch.
 * Control: GET /_emulator/stats, POST /_emulator/reset, POST /_emulator/faults, GET|POST /_emulator/cohorts,
 * PUT /_emulator/cohorts/:id, GET|POST /_emulator/cohorts/:id/members ({add, remove}),
 * POST /_emulator/cohorts/expire-redirects, POST /_emulator/cohorts/force and /_emulator/events/force
 * ({status, body?, count?, ingest?}), GET /_emulator/events?api_key=, GET /_emulator/webhooks.
 */
export async function startAmplitudeEmulator(input: AmplitudeEmulatorOptions): Promise<AmplitudeEmulator> {
  const parsed = emulatorOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new AmpError('invalid_input', `amplitude emulator: ${msg}`);
  }
  const opts = parsed.data;
  const random = makeRandom(opts.seed);
  const projects: Project[] = opts.projects.map((p, i) => ({ ...p, appId: 100_000 + i + 1 }));
  const startFaults = splitFaults(opts.faults);
  const cohortFaults = new FaultPlan(startFaults.cohorts, random);
  const eventFaults = new FaultPlan(startFaults.events, random);
  const webhooks = new WebhookPusher(opts, random);
  const cohorts = new CohortsHalf(opts, projects, cohortFaults, webhooks);
  const events = new EventsHalf(opts, new Set(projects.map((p) => p.apiKey)), eventFaults, random);
  for (const c of opts.cohorts) cohorts.upsert(c);

  const setFaults = (f: FaultsInput): void => {
    const split = splitFaults(faultsInputSchema.parse(f));
    cohortFaults.set(split.cohorts);
    eventFaults.set(split.events);
  };
  const reset = (): void => {
    cohorts.reset();
    events.reset();
    webhooks.reset();
    cohortFaults.set(startFaults.cohorts);
    eventFaults.set(startFaults.events);
  };
  const stats = (): AmplitudeEmulatorStats => ({
    cohorts: cohorts.getStats(),
    events: events.getStats(),
    webhooks: {
      delivered: webhooks.delivered,
      failed: webhooks.failed,
      duplicates: webhooks.duplicates,
      pending: webhooks.pending(),
      attempts: webhooks.attempts().length,
    },
  });

  const app = Fastify({ logger: false, bodyLimit: 50 * 1024 * 1024 });
  // The event API lists "Invalid request path" among its 400 errors; other unknown paths get a plain 404.
  app.setNotFoundHandler((req, reply) =>
    req.method === 'POST'
      ? reply.code(400).send({ code: 400, error: 'Invalid request path' })
      : reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }),
  );
  await app.register(async (scope) => cohorts.routes(scope));
  await app.register(async (scope) => events.routes(scope));
  await app.register(async (scope) => {
    // Control errors are for a developer at a terminal: one readable line.
    scope.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
      const message =
        err instanceof z.ZodError
          ? err.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')
          : err.message;
      const status =
        err instanceof z.ZodError || /^unknown /.test(err.message)
          ? /^unknown cohort/.test(err.message)
            ? 404
            : 400
          : (err.statusCode ?? 500);
      return reply.code(status).send({ error: message });
    });
    scope.get('/_emulator/stats', async () => stats());
    scope.post('/_emulator/reset', async () => {
      reset();
      return { ok: true };
    });
    scope.post('/_emulator/faults', async (req) => {
      setFaults(req.body as FaultsInput);
      return { ok: true };
    });
    scope.get('/_emulator/cohorts', async () => ({ cohorts: cohorts.list() }));
    scope.post('/_emulator/cohorts', async (req) => cohorts.upsert(cohortInputSchema.parse(req.body)));
    scope.put('/_emulator/cohorts/:id', async (req) =>
      cohorts.upsert(cohortInputSchema.parse({ ...(req.body as object), id: (req.params as { id: string }).id })),
    );
    scope.get('/_emulator/cohorts/:id/members', async (req) => ({
      members: cohorts.members((req.params as { id: string }).id),
    }));
    scope.post('/_emulator/cohorts/:id/members', async (req) => {
      const body = z
        .object({ add: z.array(memberSchema).default([]), remove: z.array(z.string().min(1)).default([]) })
        .parse(req.body ?? {});
      const id = (req.params as { id: string }).id;
      return { ...cohorts.removeMembers(id, body.remove), ...cohorts.addMembers(id, body.add) };
    });
    scope.post('/_emulator/cohorts/expire-redirects', async () => {
      cohorts.expireRedirects();
      return { ok: true };
    });
    const forceSchema = z.object({
      status: z.number().int().min(0).max(599),
      body: z.unknown().optional(),
      count: z.number().int().positive().default(1),
      ingest: z.boolean().optional(),
    });
    scope.post('/_emulator/cohorts/force', async (req) => {
      const f = forceSchema.parse(req.body);
      cohortFaults.forceNext(f.body === undefined ? { status: f.status } : { status: f.status, body: f.body }, f.count);
      return { ok: true };
    });
    scope.post('/_emulator/events/force', async (req) => {
      const f = forceSchema.parse(req.body);
      events.forceNext(f.status, f.body, f.count, f.ingest === undefined ? {} : { ingest: f.ingest });
      return { ok: true };
    });
    scope.get('/_emulator/events', async (req) => {
      const q = z.object({ api_key: z.string().min(1).optional() }).parse(req.query);
      return { events: events.list(q.api_key) };
    });
    scope.get('/_emulator/webhooks', async () => ({ pending: webhooks.pending(), attempts: webhooks.attempts() }));
  });

  let address: string;
  try {
    address = await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    webhooks.close();
    await app.close();
    const code = (e as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new AmpError('invalid_input', `amplitude emulator cannot listen on ${opts.host}:${opts.port} (${code})`, {
        cause: e,
      });
    }
    throw e;
  }
  const addr = app.server.address();
  const url =
    typeof addr === 'object' && addr
      ? `http://${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`
      : address;

  return {
    url,
    projects: projects.map((p) => ({ ...p })),
    close: async () => {
      webhooks.close();
      await app.close();
    },
    reset,
    setFaults,
    cohorts: {
      upsert: (c) => cohorts.upsert(c),
      addMembers: (id, m) => cohorts.addMembers(id, m),
      removeMembers: (id, u) => cohorts.removeMembers(id, u),
      members: (id) => cohorts.members(id),
      list: (k) => cohorts.list(k),
      downloads: (k) => cohorts.downloads(k),
      forceNext: (status, body, count = 1) =>
        cohortFaults.forceNext(body === undefined ? { status } : { status, body }, count),
      expireRedirects: () => cohorts.expireRedirects(),
    },
    events: {
      list: (k) => events.list(k),
      forceNext: (status, body, count, o) => events.forceNext(status, body, count, o),
    },
    pendingWebhooks: () => webhooks.pending(),
    webhookLog: () => webhooks.attempts(),
    webhooksIdle: (t) => webhooks.idle(t),
    onWebhook: (listener) => {
      webhooks.emitter.on('attempt', listener);
      return () => webhooks.emitter.off('attempt', listener);
    },
    stats,
  };
}
