import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  dropConnection,
  faultMixShape,
  hangConnection,
  LostAnswers,
  type RetryAfterWindows,
  rollFault,
} from '../faults';
import {
  BODY_ACCESS_DENIED,
  BODY_APP_NOT_FOUND,
  BODY_AUTH_MISSING,
  BODY_RATE_LIMITED,
  BODY_USER_NOT_FOUND,
  COMPARISON_RELATIONS,
  MAX_PROPERTY_UPDATES_PER_REQUEST,
  MAX_SUBSCRIPTIONS_PER_USER,
  MSG_SEGMENT_NAME_TAKEN,
  MSG_TOO_MANY_TAG_UPDATES,
  msgTagBudget,
  RESTRICTED_TAG_KEYS,
  SEGMENT_FIELDS,
  SEGMENT_FILTERS_MAX,
  SEGMENT_FILTERS_MIN,
  SEGMENT_NAME_MAX,
  SEGMENTS_PAGE_LIMIT_MAX,
  TAG_RELATIONS,
  VALUELESS_RELATIONS,
} from './constants';
import type { AppState, Behaviour, EmulatorStats, Faults, Limits, SegmentFilter, SegmentRecord, Tags } from './state';
import { emptyTags } from './state';

/** The mutable core the HTTP routes and the in-process handle share. */
export interface EmulatorCore {
  apps: Map<string, AppState>;
  limits: Limits;
  faults: Faults;
  behaviour: Behaviour;
  retryAfter: RetryAfterWindows;
  stats: Omit<EmulatorStats, 'byApp'>;
  /** Inspection and control endpoints call back into the handle for these. */
  control: {
    setFaults(f: Partial<Faults>): Faults;
    setLimits(l: Partial<Limits>): Limits;
    setBehaviour(b: Partial<Behaviour>): Behaviour;
    /** Changes ("" or null deletes) tags of a user behind the client's back; undefined when the user does not exist. */
    drift(appId: string, externalId: string, tags: Record<string, string | null>): Tags | undefined;
    deleteUser(appId: string, externalId: string): boolean;
    segmentUsers(appId: string, segmentId: string, nowMs?: number): string[] | undefined;
    seed(ids: string[], count: number, start: number, appId?: string): number;
    reset(): void;
    snapshot(appId: string | undefined, summary: boolean): unknown;
  };
}

/** Marks a request body that arrived without a JSON content type. */
const NOT_JSON = Symbol('not-json');

const tagsSchema = z.record(
  z.string(),
  z.union([z.string(), z.null()], { error: 'tag values must be strings ("" or null deletes the tag)' }),
);

const updateUserBody = z.object({
  properties: z.looseObject({ tags: tagsSchema.optional() }).optional(),
  deltas: z.looseObject({}).optional(),
  refresh_device_metadata: z.boolean().optional(),
});

const createUserBody = z.object({
  identity: z.looseObject({
    external_id: z.string({ error: 'identity.external_id is required' }).min(1, 'identity.external_id is required'),
  }),
  properties: z.looseObject({ tags: tagsSchema.optional() }).optional(),
  subscriptions: z
    .array(z.looseObject({ type: z.string().min(1), token: z.string().optional(), enabled: z.boolean().optional() }), {
      error: 'at least one subscription is required',
    })
    .min(
      1,
      'You must provide at least one unique identifier via the identity and Subscription via the subscriptions fields',
    )
    .max(MAX_SUBSCRIPTIONS_PER_USER, `at most ${MAX_SUBSCRIPTIONS_PER_USER} subscriptions per user`),
});

const filterSchema = z.looseObject({
  field: z.string().optional(),
  key: z.string().optional(),
  relation: z.string().optional(),
  value: z.string().optional(),
  operator: z.string().optional(),
});

const createSegmentBody = z.object({
  id: z.uuid().optional(),
  name: z
    .string()
    .min(1, 'name is required')
    .max(SEGMENT_NAME_MAX, `name must be at most ${SEGMENT_NAME_MAX} characters`),
  filters: z
    .array(filterSchema)
    .min(SEGMENT_FILTERS_MIN, 'filters must have at least 1 entry')
    .max(SEGMENT_FILTERS_MAX, `filters must have at most ${SEGMENT_FILTERS_MAX} entries`),
});

const segmentsQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(SEGMENTS_PAGE_LIMIT_MAX).default(SEGMENTS_PAGE_LIMIT_MAX),
});

const faultsBody = z.strictObject({
  errorRate: z.number().min(0).max(1).optional(),
  dropRate: z.number().min(0).max(1).optional(),
  latencyMs: z.number().int().min(0).max(600_000).optional(),
  ...faultMixShape,
});

const behaviourBody = z.strictObject({ acceptUnknownUsers: z.boolean().optional() });

const driftBody = z.strictObject({ tags: tagsSchema });

const limitsBody = z.strictObject({
  rateLimitPerSecond: z.number().int().min(0).optional(),
  perUserPerSecond: z.number().int().min(0).optional(),
  viewRateLimitPerSecond: z.number().int().min(0).optional(),
  maxTagsPerUser: z.number().int().min(1).optional(),
});

const seedBody = z.strictObject({
  app_id: z.string().optional(),
  ids: z.array(z.string().min(1)).optional(),
  count: z.number().int().min(0).max(50_000_000).optional(),
  start: z.number().int().min(0).optional(),
});

function issuesText(error: z.ZodError): string[] {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
}

function userModelError(code: string, titles: string[]): { errors: Array<{ code: string; title: string }> } {
  return { errors: titles.map((title) => ({ code, title })) };
}

/** Why a segment's filter list is invalid, or undefined when it is fine. */
function filterProblem(filters: SegmentFilter[]): string | undefined {
  for (let i = 0; i < filters.length; i++) {
    const f = filters[i]!;
    const at = `filters[${i}]`;
    if (f.operator !== undefined) {
      if (f.operator !== 'OR' && f.operator !== 'AND') return `${at}: operator must be "OR" or "AND"`;
      if (i === 0 || i === filters.length - 1) return `${at}: a filter list cannot start or end with an operator`;
      if (filters[i - 1]!.operator !== undefined) return `${at}: two operators in a row`;
      continue;
    }
    if (!f.field || !SEGMENT_FIELDS.has(f.field))
      return `${at}: field must be one of ${[...SEGMENT_FIELDS].join(', ')}`;
    if (f.field === 'tag') {
      if (!f.key) return `${at}: a tag filter needs a key`;
      if (!f.relation || !TAG_RELATIONS.has(f.relation))
        return `${at}: relation must be one of ${[...TAG_RELATIONS].join(', ')}`;
      if (VALUELESS_RELATIONS.has(f.relation)) {
        if (f.value !== undefined) return `${at}: relation "${f.relation}" takes no value`;
      } else if (f.value === undefined) return `${at}: relation "${f.relation}" needs a value`;
    } else if (f.field !== 'location') {
      if (!f.relation || !COMPARISON_RELATIONS.has(f.relation))
        return `${at}: relation must be one of ${[...COMPARISON_RELATIONS].join(', ')}`;
      if (f.value === undefined && f.hours_ago === undefined) return `${at}: a value is required`;
    }
  }
  return undefined;
}

function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

function segmentView(s: SegmentRecord): Omit<SegmentRecord, 'filters'> {
  const { filters: _f, ...rest } = s;
  return rest;
}

export function buildEmulatorServer(core: EmulatorCore, opts: { bodyLimit?: number } = {}): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: opts.bodyLimit ?? 1024 * 1024, keepAliveTimeout: 10_000 });
  const { stats } = core;
  const lost = new LostAnswers();
  lost.install(app);
  core.retryAfter.install(app);

  // JSON bodies only (fastify's built-in text/plain parser would let text through); an empty JSON body is "no body" (DELETE clients sometimes send the header).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, raw, done) => {
    const text = String(raw);
    if (text.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const err = new Error('Body is not valid JSON') as Error & { statusCode: number };
      err.statusCode = 400;
      done(err, undefined);
    }
  });
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, NOT_JSON));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    count(status);
    void reply.code(status).send({ errors: [status === 500 ? 'Internal server error' : err.message] });
  });
  app.setNotFoundHandler((_req, reply) => {
    count(404);
    void reply.code(404).send({ errors: ['Not Found'] });
  });

  function count(status: number): void {
    const k = String(status);
    stats.byStatus[k] = (stats.byStatus[k] ?? 0) + 1;
  }

  function answer(reply: FastifyReply, status: number, body: unknown): FastifyReply {
    count(status);
    return reply.code(status).send(body);
  }

  type Limited = { kind: 'user'; key: string | undefined } | { kind: 'view' } | undefined;

  /**
   * Everything in front of a vendor route: injected faults, auth, app lookup, rate limits.
   * Returns the app, or undefined when the request has already been answered (or dropped).
   */
  async function gate(
    req: FastifyRequest,
    reply: FastifyReply,
    appId: string,
    limited: Limited,
  ): Promise<AppState | undefined> {
    stats.requests++;
    const { faults } = core;
    if (faults.latencyMs > 0) await sleep(faults.latencyMs);
    const endpoint = limited?.kind ?? 'other';
    const known = core.apps.get(appId);
    // The client's conduct, counted on arrival, before any fault the emulator itself injects.
    if (known) {
      const scopes = [`${appId}|${endpoint}`];
      if (limited?.kind === 'user' && limited.key !== undefined) scopes.push(`${appId}|user|${limited.key}`);
      if (core.retryAfter.arrived(scopes, req.raw.socket)) {
        known.stats.retryAfterViolations++;
        stats.retryAfterViolations++;
      }
    }
    switch (rollFault(faults, Math.random)) {
      case 'drop':
        stats.dropped++;
        dropConnection(req, reply);
        return undefined;
      case 'error': {
        stats.faulted++;
        const status = [500, 502, 503][Math.floor(Math.random() * 3)]!;
        answer(reply, status, { errors: [`Emulated upstream failure (${status})`] });
        return undefined;
      }
      case 'timeout':
        stats.timedOut++;
        await hangConnection(req, reply, faults.hangMs);
        return undefined;
      case 'throttle':
        stats.throttled++;
        if (known) core.retryAfter.announce(`${appId}|${endpoint}`, faults.retryAfterSeconds);
        count(429);
        void reply.code(429).header('Retry-After', String(faults.retryAfterSeconds)).send(BODY_RATE_LIMITED);
        return undefined;
      case 'lost':
        // Goes on as usual (the change is applied); the answer never reaches the client.
        stats.lost++;
        lost.mark(reply);
        break;
      default:
    }
    const auth = req.headers.authorization;
    if (!auth) {
      answer(reply, 401, BODY_AUTH_MISSING);
      return undefined;
    }
    const appState = core.apps.get(appId);
    if (!appState) {
      answer(reply, 400, BODY_APP_NOT_FOUND);
      return undefined;
    }
    appState.stats.requests++;
    // "Key <key>" per the OpenAPI spec; the Keys page example spells it "key".
    const m = /^key\s+(\S+)\s*$/i.exec(auth);
    if (!m || m[1] !== appState.apiKey) {
      answer(reply, 403, BODY_ACCESS_DENIED);
      return undefined;
    }
    if (limited) {
      const now = performance.now();
      const window = limited.kind === 'view' ? appState.viewWindow : appState.window;
      const limit = limited.kind === 'view' ? core.limits.viewRateLimitPerSecond : core.limits.rateLimitPerSecond;
      let waitMs = window.wait(now, limit);
      let scope = `${appId}|${endpoint}`;
      if (waitMs === 0 && limited.kind === 'user' && limited.key !== undefined) {
        // Checked before the app window records the request, so a per-user rejection is not
        // counted as accepted by the app either.
        waitMs = appState.perUser.tryAcquire(limited.key, now, core.limits.perUserPerSecond);
        if (waitMs > 0) {
          appState.stats.perUserViolations++;
          stats.perUserViolations++;
          scope = `${appId}|user|${limited.key}`;
        }
      }
      if (waitMs > 0) {
        appState.stats.rateLimited++;
        stats.rateLimited++;
        count(429);
        const seconds = retryAfterSeconds(waitMs);
        core.retryAfter.announce(scope, seconds);
        void reply.code(429).header('Retry-After', String(seconds)).send(BODY_RATE_LIMITED);
        return undefined;
      }
      window.record(now);
      if (limited.kind === 'user') appState.stats.accepted++;
    }
    return appState;
  }

  /** Rejects bodies sent without a JSON content type the way OneSignal does. */
  function notJson(reply: FastifyReply, body: unknown): boolean {
    if (body !== NOT_JSON) return false;
    answer(reply, 400, BODY_APP_NOT_FOUND);
    return true;
  }

  /**
   * Validates and applies tag changes to `tags` in place. All-or-nothing: on any problem it
   * returns the error titles and `tags` is untouched.
   */
  function applyTags(tags: Tags, changes: Record<string, string | null>, extraUpdates: number): string | undefined {
    const keys = Object.keys(changes);
    if (keys.length + extraUpdates > MAX_PROPERTY_UPDATES_PER_REQUEST) return MSG_TOO_MANY_TAG_UPDATES;
    let adds = 0;
    for (const k of keys) {
      if (k === '') return 'tag keys must not be empty';
      if (RESTRICTED_TAG_KEYS.has(k)) return `"${k}" is a restricted tag key`;
      const v = changes[k];
      if (v !== null && v !== '' && v !== undefined && !Object.hasOwn(tags, k)) adds++;
    }
    // Conservative reading of "at the limit, delete first, then add in a second request":
    // deletes in this same request do not make room.
    const max = core.limits.maxTagsPerUser;
    if (adds > 0 && Object.keys(tags).length + adds > max) return msgTagBudget(max);
    for (const k of keys) {
      const v = changes[k];
      if (v === null || v === '' || v === undefined) delete tags[k];
      else tags[k] = v;
    }
    return undefined;
  }

  // ---- User Model ----

  app.patch<{ Params: { app_id: string; alias_label: string; alias_id: string } }>(
    '/apps/:app_id/users/by/:alias_label/:alias_id',
    async (req, reply) => {
      const { app_id, alias_label, alias_id } = req.params;
      const appState = await gate(req, reply, app_id, { kind: 'user', key: alias_id });
      if (!appState) return reply;
      if (notJson(reply, req.body)) return reply;
      if (alias_label !== 'external_id') {
        return answer(
          reply,
          400,
          userModelError('unsupported-alias', [
            `The emulator only addresses users by external_id, not "${alias_label}"`,
          ]),
        );
      }
      const parsed = updateUserBody.safeParse(req.body ?? {});
      if (!parsed.success) return answer(reply, 400, userModelError('invalid-request', issuesText(parsed.error)));
      const props = parsed.data.properties ?? {};
      const changes = props.tags ?? {};
      const otherProps = Object.keys(props).filter((k) => k !== 'tags').length;
      const rec = appState.users.has(alias_id) ? appState.record(alias_id)! : undefined;
      if (!rec) {
        if (!core.behaviour.acceptUnknownUsers) return answer(reply, 404, BODY_USER_NOT_FOUND);
        // Validated like any update, then accepted and dropped: 202 means accepted, not applied.
        const discarded = emptyTags();
        const problem = applyTags(discarded, changes, otherProps);
        if (problem) return answer(reply, 400, userModelError('invalid-tags', [problem]));
        stats.unknownAccepted++;
        return answer(reply, 202, { properties: { tags: discarded } });
      }
      const problem = applyTags(rec.tags, changes, otherProps);
      if (problem) return answer(reply, 400, userModelError('invalid-tags', [problem]));
      return answer(reply, 202, { properties: { tags: rec.tags } });
    },
  );

  app.post<{ Params: { app_id: string } }>('/apps/:app_id/users', async (req, reply) => {
    const raw = req.body as { identity?: { external_id?: unknown } } | undefined;
    const key =
      typeof raw === 'object' && raw && typeof raw.identity?.external_id === 'string'
        ? raw.identity.external_id
        : undefined;
    const appState = await gate(req, reply, req.params.app_id, { kind: 'user', key });
    if (!appState) return reply;
    if (notJson(reply, req.body)) return reply;
    const parsed = createUserBody.safeParse(req.body ?? {});
    if (!parsed.success) return answer(reply, 400, userModelError('invalid-request', issuesText(parsed.error)));
    const { identity, properties, subscriptions } = parsed.data;
    const externalId = identity.external_id;
    const existing = appState.users.has(externalId);
    const rec = existing ? appState.record(externalId)! : { onesignalId: randomUUID(), tags: emptyTags() };
    const problem = applyTags(rec.tags, properties?.tags ?? {}, 0);
    if (problem) return answer(reply, 400, userModelError('invalid-tags', [problem]));
    if (!existing) appState.users.set(externalId, rec);
    return answer(reply, existing ? 202 : 200, {
      identity: { ...identity, onesignal_id: rec.onesignalId, external_id: externalId },
      properties: { tags: rec.tags },
      subscriptions: subscriptions.map((s) => ({ id: randomUUID(), enabled: true, ...s })),
    });
  });

  app.get<{ Params: { app_id: string; alias_label: string; alias_id: string } }>(
    '/apps/:app_id/users/by/:alias_label/:alias_id',
    async (req, reply) => {
      const { app_id, alias_label, alias_id } = req.params;
      const appState = await gate(req, reply, app_id, { kind: 'view' });
      if (!appState) return reply;
      if (alias_label !== 'external_id') {
        return answer(
          reply,
          400,
          userModelError('unsupported-alias', [
            `The emulator only addresses users by external_id, not "${alias_label}"`,
          ]),
        );
      }
      const rec = appState.users.has(alias_id) ? appState.record(alias_id)! : undefined;
      if (!rec) return answer(reply, 404, BODY_USER_NOT_FOUND);
      return answer(reply, 200, {
        identity: { onesignal_id: rec.onesignalId, external_id: alias_id },
        properties: { tags: rec.tags },
        subscriptions: [],
      });
    },
  );

  app.delete<{ Params: { app_id: string; alias_label: string; alias_id: string } }>(
    '/apps/:app_id/users/by/:alias_label/:alias_id',
    async (req, reply) => {
      const { app_id, alias_label, alias_id } = req.params;
      const appState = await gate(req, reply, app_id, { kind: 'user', key: alias_id });
      if (!appState) return reply;
      if (alias_label !== 'external_id') {
        return answer(
          reply,
          400,
          userModelError('unsupported-alias', [
            `The emulator only addresses users by external_id, not "${alias_label}"`,
          ]),
        );
      }
      // The answer for an unknown user is [U]; 404 like the View endpoint on the same path.
      if (!appState.users.delete(alias_id)) return answer(reply, 404, BODY_USER_NOT_FOUND);
      return answer(reply, 200, {});
    },
  );

  // ---- Segments ----

  app.post<{ Params: { app_id: string } }>('/apps/:app_id/segments', async (req, reply) => {
    const appState = await gate(req, reply, req.params.app_id, undefined);
    if (!appState) return reply;
    if (notJson(reply, req.body)) return reply;
    const parsed = createSegmentBody.safeParse(req.body ?? {});
    if (!parsed.success) return answer(reply, 400, { success: false, errors: issuesText(parsed.error) });
    const filters = parsed.data.filters as SegmentFilter[];
    const problem = filterProblem(filters);
    if (problem) return answer(reply, 400, { success: false, errors: [problem] });
    const { name } = parsed.data;
    // Duplicate name on create: the docs only describe it for update (400). The Node SDK's
    // createSegment handles 409 CreateSegmentConflictResponse {success, errors[]}, so we answer 409.
    if (appState.segments.some((s) => s.name === name))
      return answer(reply, 409, { success: false, errors: [MSG_SEGMENT_NAME_TAKEN] });
    const id = parsed.data.id ?? randomUUID();
    if (appState.segments.some((s) => s.id === id))
      return answer(reply, 409, { success: false, errors: ['Segment id is already taken.'] });
    const now = new Date().toISOString();
    appState.segments.push({
      id,
      name,
      filters,
      created_at: now,
      updated_at: now,
      app_id: appState.appId,
      read_only: false,
      is_active: true,
    });
    return answer(reply, 201, { success: true, id });
  });

  app.get<{ Params: { app_id: string }; Querystring: Record<string, string> }>(
    '/apps/:app_id/segments',
    async (req, reply) => {
      const appState = await gate(req, reply, req.params.app_id, undefined);
      if (!appState) return reply;
      const parsed = segmentsQuery.safeParse(req.query);
      if (!parsed.success) return answer(reply, 400, { success: false, errors: issuesText(parsed.error) });
      const { offset, limit } = parsed.data;
      // Kept in creation order, which is the documented created_at ascending sort.
      return answer(reply, 200, {
        total_count: appState.segments.length,
        offset,
        limit,
        segments: appState.segments.slice(offset, offset + limit).map(segmentView),
      });
    },
  );

  app.delete<{ Params: { app_id: string; segment_id: string } }>(
    '/apps/:app_id/segments/:segment_id',
    async (req, reply) => {
      const appState = await gate(req, reply, req.params.app_id, undefined);
      if (!appState) return reply;
      const i = appState.segments.findIndex((s) => s.id === req.params.segment_id);
      if (i < 0) return answer(reply, 404, { success: false });
      appState.segments.splice(i, 1);
      return answer(reply, 200, { success: true });
    },
  );

  // ---- inspection and control (no auth, not counted, no faults) ----

  const control = core.control;
  const badInput = (reply: FastifyReply, e: z.ZodError) =>
    reply.code(400).send({ error: 'invalid_input', message: issuesText(e).join('; ') });

  app.get<{ Querystring: { app_id?: string; summary?: string } }>('/_emulator/state', async (req, reply) => {
    const appId = req.query.app_id;
    if (appId !== undefined && !core.apps.has(appId))
      return reply.code(404).send({ error: 'not_found', message: `no app ${appId}` });
    const summary = req.query.summary !== undefined && req.query.summary !== '0' && req.query.summary !== 'false';
    return control.snapshot(appId, summary);
  });

  app.get<{ Params: { app_id: string; external_id: string } }>(
    '/_emulator/users/:app_id/:external_id',
    async (req, reply) => {
      const appState = core.apps.get(req.params.app_id);
      if (!appState) return reply.code(404).send({ error: 'not_found', message: `no app ${req.params.app_id}` });
      const tags = appState.getTags(req.params.external_id);
      if (!tags) return reply.code(404).send({ error: 'not_found', message: `no user ${req.params.external_id}` });
      return { app_id: appState.appId, external_id: req.params.external_id, tags };
    },
  );

  app.patch<{ Params: { app_id: string; external_id: string } }>(
    '/_emulator/users/:app_id/:external_id',
    async (req, reply) => {
      const parsed = driftBody.safeParse(req.body ?? {});
      if (!parsed.success) return badInput(reply, parsed.error);
      if (!core.apps.has(req.params.app_id))
        return reply.code(404).send({ error: 'not_found', message: `no app ${req.params.app_id}` });
      const tags = control.drift(req.params.app_id, req.params.external_id, parsed.data.tags);
      if (!tags) return reply.code(404).send({ error: 'not_found', message: `no user ${req.params.external_id}` });
      return { app_id: req.params.app_id, external_id: req.params.external_id, tags };
    },
  );

  app.delete<{ Params: { app_id: string; external_id: string } }>(
    '/_emulator/users/:app_id/:external_id',
    async (req, reply) => {
      if (!core.apps.has(req.params.app_id))
        return reply.code(404).send({ error: 'not_found', message: `no app ${req.params.app_id}` });
      if (!control.deleteUser(req.params.app_id, req.params.external_id))
        return reply.code(404).send({ error: 'not_found', message: `no user ${req.params.external_id}` });
      return { deleted: true };
    },
  );

  app.get<{ Params: { app_id: string; segment_id: string }; Querystring: { now?: string } }>(
    '/_emulator/segments/:app_id/:segment_id/users',
    async (req, reply) => {
      if (!core.apps.has(req.params.app_id))
        return reply.code(404).send({ error: 'not_found', message: `no app ${req.params.app_id}` });
      const now = req.query.now === undefined ? undefined : Number(req.query.now);
      if (now !== undefined && !Number.isFinite(now))
        return reply.code(400).send({ error: 'invalid_input', message: 'now must be a Unix time in milliseconds' });
      let users: string[] | undefined;
      try {
        users = control.segmentUsers(req.params.app_id, req.params.segment_id, now);
      } catch (e) {
        return reply.code(400).send({ error: 'invalid_input', message: (e as Error).message });
      }
      if (!users) return reply.code(404).send({ error: 'not_found', message: `no segment ${req.params.segment_id}` });
      return { users };
    },
  );

  app.post('/_emulator/behaviour', async (req, reply) => {
    const parsed = behaviourBody.safeParse(req.body ?? {});
    if (!parsed.success) return badInput(reply, parsed.error);
    return { behaviour: control.setBehaviour(stripUndefined(parsed.data)) };
  });

  app.post('/_emulator/faults', async (req, reply) => {
    const parsed = faultsBody.safeParse(req.body ?? {});
    if (!parsed.success) return badInput(reply, parsed.error);
    return { faults: control.setFaults(stripUndefined(parsed.data)) };
  });

  app.post('/_emulator/limits', async (req, reply) => {
    const parsed = limitsBody.safeParse(req.body ?? {});
    if (!parsed.success) return badInput(reply, parsed.error);
    return { limits: control.setLimits(stripUndefined(parsed.data)) };
  });

  app.post('/_emulator/users', async (req, reply) => {
    const parsed = seedBody.safeParse(req.body ?? {});
    if (!parsed.success) return badInput(reply, parsed.error);
    const { app_id, ids = [], count = 0, start = 0 } = parsed.data;
    if (app_id !== undefined && !core.apps.has(app_id))
      return reply.code(404).send({ error: 'not_found', message: `no app ${app_id}` });
    return { added: control.seed(ids, count, start, app_id) };
  });

  app.post('/_emulator/reset', async () => {
    control.reset();
    return { reset: true };
  });

  return app;
}

function stripUndefined<T extends object>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
