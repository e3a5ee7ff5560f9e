import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { AmpError } from '../../errors';
import { DEFAULT_HANG_MS, DEFAULT_RETRY_AFTER_SECONDS, faultMixShape, RetryAfterWindows } from '../faults';
import {
  DEFAULT_APP_RATE_LIMIT_PER_SECOND,
  DEFAULT_MAX_TAGS_PER_USER,
  DEFAULT_PER_USER_PER_SECOND,
  DEFAULT_VIEW_RATE_LIMIT_PER_SECOND,
} from './constants';
import { segmentUsers } from './segments';
import { buildEmulatorServer, type EmulatorCore } from './server';
import {
  AppState,
  type Behaviour,
  type EmulatorStats,
  type Faults,
  type Limits,
  type SegmentFilter,
  type SegmentRecord,
  seededIds,
  type Tags,
} from './state';

export { DEFAULT_APP } from './constants';
export type { Behaviour, EmulatorStats, Faults, Limits, SegmentFilter, SegmentRecord, Tags } from './state';

const rate = z.number().min(0).max(1);

export const oneSignalEmulatorOptionsSchema = z.strictObject({
  apps: z
    .array(z.strictObject({ appId: z.string().min(1), apiKey: z.string().min(1) }))
    .min(1, 'at least one app is required')
    .refine((a) => new Set(a.map((x) => x.appId)).size === a.length, 'app ids must be unique'),
  rateLimitPerSecond: z.number().int().min(0).default(DEFAULT_APP_RATE_LIMIT_PER_SECOND),
  perUserPerSecond: z.number().int().min(0).default(DEFAULT_PER_USER_PER_SECOND),
  viewRateLimitPerSecond: z.number().int().min(0).default(DEFAULT_VIEW_RATE_LIMIT_PER_SECOND),
  maxTagsPerUser: z.number().int().min(1).default(DEFAULT_MAX_TAGS_PER_USER),
  faults: z
    .strictObject({
      errorRate: rate.default(0),
      dropRate: rate.default(0),
      latencyMs: z.number().int().min(0).default(0),
      faultRate: faultMixShape.faultRate.default(0),
      timeoutRate: faultMixShape.timeoutRate.default(0),
      lostRate: faultMixShape.lostRate.default(0),
      throttleRate: faultMixShape.throttleRate.default(0),
      hangMs: faultMixShape.hangMs.default(DEFAULT_HANG_MS),
      retryAfterSeconds: faultMixShape.retryAfterSeconds.default(DEFAULT_RETRY_AFTER_SECONDS),
    })
    .prefault({}),
  /** Answer 202 to updates of unknown users without applying them (see Behaviour). */
  acceptUnknownUsers: z.boolean().default(false),
  users: z
    .strictObject({
      mode: z.enum(['seeded', 'empty']),
      count: z.number().int().min(0).optional(),
      ids: z.array(z.string().min(1)).optional(),
      file: z.string().min(1).optional(),
    })
    .default({ mode: 'empty' }),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  bodyLimit: z.number().int().positive().optional(),
});

export type OneSignalEmulatorOptions = z.input<typeof oneSignalEmulatorOptionsSchema>;

export interface OneSignalEmulatorState {
  /** Tags of a user (empty object for a user without tags), undefined when the user does not exist. `appId` defaults to the first app. */
  getUser(externalId: string, appId?: string): Tags | undefined;
  userCount(appId?: string): number;
  segments(appId?: string): SegmentRecord[];
  stats(): EmulatorStats;
  /** Adds users (idempotent); returns how many were new. */
  seedUsers(ids: Iterable<string>, appId?: string): number;
  /**
   * Drift: changes tags of a user behind the sync's back, as the app's SDK, a dashboard CSV
   * import or another tool would ("" or null deletes a tag; no limits apply). Returns the
   * user's tags afterwards, undefined when the user does not exist.
   */
  setTags(externalId: string, tags: Record<string, string | null>, appId?: string): Tags | undefined;
  /** Drift: deletes one tag; false when the user does not exist. */
  deleteTag(externalId: string, key: string, appId?: string): boolean;
  /** Drift: deletes the user; false when there was none. */
  deleteUser(externalId: string, appId?: string): boolean;
  /**
   * The external ids a segment selects at `nowMs`: a stored segment by id, or a filter list
   * (tag filters only; see segments.ts for the readings taken).
   */
  segmentUsers(segment: string | SegmentFilter[], opts?: { appId?: string; nowMs?: number }): string[];
}

export interface OneSignalEmulator {
  url: string;
  port: number;
  apps: Array<{ appId: string; apiKey: string }>;
  close(): Promise<void>;
  setFaults(f: Partial<Faults>): Faults;
  setLimits(l: Partial<Limits>): Limits;
  setBehaviour(b: Partial<Behaviour>): Behaviour;
  /** Back to the state right after start: seeded users only, no segments, zeroed stats, initial limits and faults. */
  reset(): void;
  state: OneSignalEmulatorState;
}

function readSeedFile(file: string): string[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new AmpError('invalid_input', `cannot read the seed file ${file}: ${(e as Error).message}`, { cause: e });
  }
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** Starts a OneSignal REST API fake on loopback (or `host`), resolving once it listens. */
export async function startOneSignalEmulator(input: OneSignalEmulatorOptions): Promise<OneSignalEmulator> {
  const parsed = oneSignalEmulatorOptionsSchema.safeParse(input);
  if (!parsed.success) {
    throw new AmpError(
      'invalid_input',
      `OneSignal emulator options: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ')}`,
    );
  }
  const opts = parsed.data;
  const fileIds = opts.users.mode === 'seeded' && opts.users.file ? readSeedFile(opts.users.file) : [];

  const initialLimits: Limits = {
    rateLimitPerSecond: opts.rateLimitPerSecond,
    perUserPerSecond: opts.perUserPerSecond,
    viewRateLimitPerSecond: opts.viewRateLimitPerSecond,
    maxTagsPerUser: opts.maxTagsPerUser,
  };
  const initialFaults: Faults = { ...opts.faults };
  const initialBehaviour: Behaviour = { acceptUnknownUsers: opts.acceptUnknownUsers };

  const apps = new Map<string, AppState>();
  for (const a of opts.apps) apps.set(a.appId, new AppState(a.appId, a.apiKey));
  const firstAppId = opts.apps[0]!.appId;

  const seedInitial = (app: AppState): void => {
    if (opts.users.mode !== 'seeded') return;
    if (opts.users.count) app.seed(seededIds(opts.users.count));
    if (opts.users.ids) app.seed(opts.users.ids);
    app.seed(fileIds);
  };
  for (const app of apps.values()) seedInitial(app);

  const appOf = (appId: string | undefined): AppState => {
    const app = apps.get(appId ?? firstAppId);
    if (!app) throw new AmpError('not_found', `the emulator has no app ${appId}`);
    return app;
  };

  const core: EmulatorCore = {
    apps,
    limits: { ...initialLimits },
    faults: { ...initialFaults },
    behaviour: { ...initialBehaviour },
    retryAfter: new RetryAfterWindows(),
    stats: freshStats(),
    control: {
      setFaults,
      setLimits,
      setBehaviour,
      reset,
      drift: (appId, externalId, tags) => drift(appOf(appId), externalId, tags),
      deleteUser: (appId, externalId) => appOf(appId).users.delete(externalId),
      segmentUsers(appId, segmentId, nowMs) {
        const segment = appOf(appId).segments.find((s) => s.id === segmentId);
        return segment ? segmentUsers(appOf(appId), segment.filters, nowMs) : undefined;
      },
      seed(ids, count, start, appId) {
        let added = 0;
        for (const app of appId ? [appOf(appId)] : apps.values()) {
          added += app.seed(ids) + app.seed(seededIds(count, start));
        }
        return added;
      },
      snapshot(appId, summary) {
        const selected = appId ? [appOf(appId)] : [...apps.values()];
        return {
          apps: selected.map((app) => ({
            app_id: app.appId,
            user_count: app.users.size,
            ...(summary ? {} : { users: Object.fromEntries([...app.users].map(([id, rec]) => [id, rec?.tags ?? {}])) }),
            segments: app.segments,
          })),
          limits: core.limits,
          faults: core.faults,
          stats: stats(),
        };
      },
    },
  };

  function setFaults(f: Partial<Faults>): Faults {
    const next = oneSignalEmulatorOptionsSchema.shape.faults.safeParse({ ...core.faults, ...f });
    if (!next.success)
      throw new AmpError(
        'invalid_input',
        `faults: ${next.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    core.faults = next.data;
    return { ...core.faults };
  }

  function setBehaviour(b: Partial<Behaviour>): Behaviour {
    core.behaviour = { ...core.behaviour, ...Object.fromEntries(Object.entries(b).filter(([, v]) => v !== undefined)) };
    return { ...core.behaviour };
  }

  function drift(app: AppState, externalId: string, tags: Record<string, string | null>): Tags | undefined {
    const rec = app.record(externalId);
    if (!rec) return undefined;
    for (const [k, v] of Object.entries(tags)) {
      if (v === null || v === '') delete rec.tags[k];
      else rec.tags[k] = v;
    }
    return { ...rec.tags };
  }

  function setLimits(l: Partial<Limits>): Limits {
    core.limits = { ...core.limits, ...Object.fromEntries(Object.entries(l).filter(([, v]) => v !== undefined)) };
    return { ...core.limits };
  }

  function reset(): void {
    for (const app of apps.values()) {
      app.reset();
      seedInitial(app);
    }
    core.limits = { ...initialLimits };
    core.faults = { ...initialFaults };
    core.behaviour = { ...initialBehaviour };
    core.retryAfter.clear();
    // The server holds this object; refill it rather than replacing it.
    Object.assign(statsRef, freshStats());
  }

  const statsRef = core.stats;

  function stats(): EmulatorStats {
    const byApp: EmulatorStats['byApp'] = {};
    for (const app of apps.values()) byApp[app.appId] = app.appStats();
    return { ...statsRef, byStatus: { ...statsRef.byStatus }, byApp };
  }

  const server = buildEmulatorServer(core, { bodyLimit: opts.bodyLimit });
  try {
    await server.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await server.close().catch(() => {});
    throw new AmpError(
      'invalid_input',
      `the OneSignal emulator cannot listen on ${opts.host}:${opts.port}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const port = (server.server.address() as AddressInfo).port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${hostForUrl}:${port}`,
    port,
    apps: opts.apps.map((a) => ({ ...a })),
    close() {
      // Idle keep-alive sockets would otherwise hold close() open until they time out.
      closed ??= (async () => {
        server.server.closeIdleConnections();
        const closing = server.close();
        server.server.closeAllConnections();
        await closing;
      })();
      return closed;
    },
    setFaults,
    setLimits,
    setBehaviour,
    reset,
    state: {
      getUser: (externalId, appId) => {
        const tags = appOf(appId).getTags(externalId);
        return tags === undefined ? undefined : { ...tags };
      },
      userCount: (appId) => appOf(appId).users.size,
      segments: (appId) => appOf(appId).segments.map((s) => ({ ...s, filters: s.filters.map((f) => ({ ...f })) })),
      stats,
      seedUsers: (ids, appId) => appOf(appId).seed(ids),
      setTags: (externalId, tags, appId) => drift(appOf(appId), externalId, tags),
      deleteTag: (externalId, key, appId) => drift(appOf(appId), externalId, { [key]: null }) !== undefined,
      deleteUser: (externalId, appId) => appOf(appId).users.delete(externalId),
      segmentUsers(segment, o = {}) {
        const app = appOf(o.appId);
        let filters: SegmentFilter[];
        if (typeof segment === 'string') {
          const found = app.segments.find((s) => s.id === segment);
          if (!found) throw new AmpError('not_found', `the emulator has no segment ${segment} in app ${app.appId}`);
          filters = found.filters;
        } else filters = segment;
        return segmentUsers(app, filters, o.nowMs);
      },
    },
  };
}

function freshStats(): Omit<EmulatorStats, 'byApp'> {
  return {
    requests: 0,
    byStatus: {},
    perUserViolations: 0,
    rateLimited: 0,
    dropped: 0,
    faulted: 0,
    timedOut: 0,
    lost: 0,
    throttled: 0,
    retryAfterViolations: 0,
    unknownAccepted: 0,
  };
}
