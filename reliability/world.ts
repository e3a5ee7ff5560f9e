/**
 * The installation the faults and crash scenarios run: an Amplitude project (emulated) whose
 * cohort syncs to a OneSignal app (emulated), and a OneSignal event stream forwarded to
 * Amplitude, all set up with the real CLI and worked by a cluster of real processes.
 * It knows the truth (the cohort's membership, the events sent), so it can count what differs.
 */
import { sql } from 'kysely';
import { type AmplitudeEmulator, startAmplitudeEmulator } from '../src/emulators/amplitude';
import { type OneSignalEmulator, startOneSignalEmulator } from '../src/emulators/onesignal';
import { type Context, openContext } from '../src/store';
import {
  api,
  Cluster,
  call,
  cli,
  cliJson,
  type Database,
  type Dialect,
  freePort,
  freshDatabase,
  seeded,
  sleep,
  waitFor,
} from './cluster';

export const APP_ID = '5eed0000-0000-4000-8000-000000000001';
export const OS_KEY = 'os-app-key-reliability-31f9';
export const AMP = { apiKey: 'amp-project-key-reliability-8c2d', secretKey: 'amp-secret-key-reliability-4e7a' };
export const STREAM_KEY = 'amp-stream-key-reliability-d05b';
export const COHORT = 'coh_reliability';

export interface WorldOptions {
  dialect: Dialect;
  label: string;
  /** Cohort members at the start. */
  members: number;
  /** Users known to OneSignal beyond the members, whom churn adds (0). */
  pool?: number;
  /** Share of vendor requests failed, evenly: 5xx, dropped connections, hangs, answers lost after the change was applied. */
  faultRate?: number;
  /**
   * Share of vendor requests answered 429 with Retry-After (1 s). Kept apart from faultRate: a
   * client that honours Retry-After sends nothing for a second after each, so a share of p caps
   * any such client near 1/p requests a second (4% → ~25/s).
   */
  throttleRate?: number;
  /** How long a hung request is held before the emulator closes it (1 s). */
  hangMs?: number;
  /** The destination's and the OneSignal app's requests per second (1,000). */
  rateLimit?: number;
  workers: number;
  seed: number;
  /** Extra environment of every process (AMPSIGNAL_LOG_LEVEL…). */
  env?: Record<string, string>;
  /** Opens serve's inspector on this port (heap measurements). */
  inspectPort?: number;
}

export interface World {
  db: Database;
  ctx: Context;
  os: OneSignalEmulator;
  amp: AmplitudeEmulator;
  cluster: Cluster;
  syncId: string;
  tagKey: string;
  streamId: string;
  streamSecret: string;
  sourceSecret: string;
  sourceId: string;
  destinationId: string;
  /** Current membership (the truth). */
  members: Set<string>;
  users: string[];
  random: () => number;
  close(): Promise<void>;
}

/** What a scenario leaves unsaid: no faults, no churn pool, the OneSignal limit. */
const WORLD_DEFAULTS = { pool: 0, faultRate: 0, throttleRate: 0, hangMs: 1_000, rateLimit: 1_000 };

/**
 * The one set-up of every scenario: a fresh database, both emulators (faults as asked), the
 * source, destination, cohort sync and event stream made through the real CLI, and the cluster
 * of serve and workers running.
 */
export async function startWorld(options: WorldOptions): Promise<World> {
  const o = { ...WORLD_DEFAULTS, ...options };
  const db = await freshDatabase(o.dialect, o.label);
  const closers: Array<() => Promise<unknown>> = [() => db.drop()];
  const close = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => {});
  };
  try {
    const random = seeded(o.seed);
    const users = Array.from({ length: o.members + o.pool }, (_, i) => `user-${i}`);
    const members = new Set(users.slice(0, o.members));
    const each = o.faultRate / 4;
    const faults = {
      errorRate: each,
      dropRate: each,
      timeoutRate: each,
      lostRate: each,
      throttleRate: o.throttleRate,
      hangMs: o.hangMs,
      retryAfterSeconds: 1,
    };
    const os = await startOneSignalEmulator({
      apps: [{ appId: APP_ID, apiKey: OS_KEY }],
      users: { mode: 'seeded', ids: users },
      rateLimitPerSecond: o.rateLimit,
      faults,
    });
    closers.push(() => os.close());
    const amp = await startAmplitudeEmulator({
      projects: [AMP, { apiKey: STREAM_KEY, secretKey: 'unused-stream-project-secret' }],
      pollsBeforeReady: 1,
      seed: o.seed,
      cohorts: [{ id: COHORT, name: 'Reliability', members: [...members].map((user_id) => ({ user_id })) }],
      faults,
    });
    closers.push(() => amp.close());

    const url = db.url;
    const migrated = await cli(url, ['migrate', '--json'], { env: o.env ?? {} });
    if (migrated.code !== 0) throw new Error(`migrate failed: ${migrated.stderr}`);
    const keys = { ...o.env, AMP_KEY: AMP.apiKey, AMP_SECRET: AMP.secretKey, OS_KEY, STREAM_KEY };
    const source = await cliJson(
      url,
      [
        'source',
        'add',
        'amplitude',
        '--name',
        'project',
        '--api-key-env',
        'AMP_KEY',
        '--secret-key-env',
        'AMP_SECRET',
        '--api-url',
        amp.url,
      ],
      { env: keys },
    );
    const dest = await cliJson(
      url,
      [
        'destination',
        'add',
        'onesignal',
        '--name',
        'app',
        '--app-id',
        APP_ID,
        '--api-key-env',
        'OS_KEY',
        '--api-url',
        os.url,
        '--rate-limit',
        String(o.rateLimit),
        '--source',
        source.id,
      ],
      { env: keys },
    );
    await refreshCohorts(url, source.id, o.env ?? {});
    const sync = await cliJson(url, ['sync', 'create', '--cohort', COHORT, '--destination', dest.id], { env: keys });
    const stream = await cliJson(
      url,
      ['stream', 'add', '--name', 'events', '--amplitude-api-key-env', 'STREAM_KEY', '--amplitude-url', amp.url],
      { env: keys },
    );

    const ctx = await openContext({ db: url, migrate: 'require' });
    closers.push(() => ctx.close());
    const cluster = new Cluster({
      db: url,
      dialect: o.dialect,
      workers: o.workers,
      port: await freePort(),
      ...(o.env ? { env: o.env } : {}),
      ...(o.inspectPort ? { inspectPort: o.inspectPort } : {}),
    });
    closers.push(() => cluster.stop());
    await cluster.start();
    return {
      db,
      ctx,
      os,
      amp,
      cluster,
      syncId: sync.id,
      tagKey: sync.tag_key,
      streamId: stream.id,
      streamSecret: stream.webhook_secret,
      sourceSecret: source.webhook_secret,
      sourceId: source.id,
      destinationId: dest.id,
      members,
      users,
      random,
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/** `cohort list --refresh` until it succeeds: under faults one listing can exhaust its retries. */
async function refreshCohorts(url: string, sourceId: string, env: Record<string, string>): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await cli(url, ['cohort', 'list', '--source', sourceId, '--refresh', '--json'], { env });
    if (r.code === 0) return;
    if (i >= 5) throw new Error(`cohort list --refresh kept failing: ${r.stderr}`);
  }
}

/** Changes `share` of the cohort: that many members leave and as many users of the pool join. */
export function churn(w: World, share: number): { added: number; removed: number } {
  const n = Math.max(1, Math.round(w.members.size * share));
  const inside = [...w.members];
  const outside = w.users.filter((u) => !w.members.has(u));
  const leave = pick(inside, n, w.random);
  const join = pick(outside, Math.min(n, outside.length), w.random);
  w.amp.cohorts.removeMembers(COHORT, leave);
  w.amp.cohorts.addMembers(
    COHORT,
    join.map((user_id) => ({ user_id })),
  );
  for (const u of leave) w.members.delete(u);
  for (const u of join) w.members.add(u);
  return { added: join.length, removed: leave.length };
}

function pick<T>(from: T[], n: number, random: () => number): T[] {
  const a = [...from];
  for (let i = 0; i < n && i < a.length; i++) {
    const j = i + Math.floor(random() * (a.length - i));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, n);
}

/** Asks for a run through the admin API, as the UI's "Run now" does (queued for the workers). */
export async function requestRun(w: World): Promise<void> {
  for (;;) {
    const r = await api(w.cluster.url, `/syncs/${w.syncId}/run`, 'POST', {});
    if (r.status === 202 || r.status === 200) return;
    // The web process may be down for a moment (the crash scenario kills it too).
    if (r.status !== 0 && r.status < 500) throw new Error(`run request answered ${r.status}: ${r.text}`);
    await sleep(200);
  }
}

export interface RunRow {
  id: string;
  status: string;
  error: string | null;
  started_at: number;
}

export function runs(w: World): Promise<RunRow[]> {
  return w.ctx.store.db
    .selectFrom('runs')
    .select(['id', 'status', 'error', 'started_at'])
    .where('sync_id', '=', w.syncId)
    .orderBy('started_at')
    .execute();
}

/** Ledger rows still to be delivered (not settled as delivered, not_found or failed). */
export async function pendingRows(w: World): Promise<number> {
  const r = await sql<{ n: number }>`
    SELECT COUNT(*) AS n FROM ledger WHERE desired <> confirmed AND (outcome IS NULL OR outcome = 'retry')`.execute(
    w.ctx.store.db,
  );
  return Number(r.rows[0]!.n);
}

export async function pendingEvents(w: World): Promise<number> {
  const r = await w.ctx.store.db
    .selectFrom('stream_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'pending')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/**
 * One round: asks for a run and waits until a run that started after the request has ended
 * and every ledger row is settled. A run that fails (its download exhausted its retries) is
 * asked for again, as the next scheduled pull would; returns how many runs failed.
 */
export async function syncRound(
  w: World,
  timeoutMs: number,
  maxFailures = 5,
): Promise<{ failed: number; runs: number }> {
  const progress = verbose(async () => ({
    runs: (await runs(w)).map((r) => r.status).join(','),
    pending_rows: await pendingRows(w),
    pending_events: await pendingEvents(w),
    onesignal_requests: w.os.state.stats().requests,
  }));
  try {
    return await roundOf(w, timeoutMs, maxFailures);
  } finally {
    progress();
  }
}

/** RELIABILITY_VERBOSE=1: what a scenario waits on, every 5 s on stderr. */
export function verbose(what: () => Promise<Record<string, unknown>>): () => void {
  if (!process.env.RELIABILITY_VERBOSE) return () => {};
  const t0 = Date.now();
  const timer = setInterval(async () => {
    process.stderr.write(`${JSON.stringify({ s: Math.round((Date.now() - t0) / 1000), ...(await what()) })}\n`);
  }, 5_000);
  return () => clearInterval(timer);
}

async function roundOf(w: World, timeoutMs: number, maxFailures: number): Promise<{ failed: number; runs: number }> {
  let failed = 0;
  let asked = 0;
  for (;;) {
    const before = (await runs(w)).length;
    await requestRun(w);
    asked++;
    const run = await waitFor(
      async () => {
        const all = await runs(w);
        const last = all.length > before ? all[all.length - 1] : undefined;
        return last && last.status !== 'running' ? last : undefined;
      },
      'the requested run to end',
      timeoutMs,
      250,
    );
    if (run.status === 'completed') {
      await waitFor(async () => (await pendingRows(w)) === 0, 'every ledger row to settle', timeoutMs, 250);
      return { failed, runs: asked };
    }
    failed++;
    if (failed > maxFailures) throw new Error(`the run failed ${failed} times in a row: ${run.error}`);
  }
}

/** What differs between the cohort's membership and the tags in OneSignal. */
export function tagMismatches(w: World): number {
  let wrong = 0;
  for (const u of w.users) {
    const tags = w.os.state.getUser(u, APP_ID) ?? {};
    const tagged = tags[w.tagKey] === '1';
    if (tagged !== w.members.has(u)) wrong++;
  }
  return wrong;
}

/** A OneSignal Event Streams event in the shape the README's template renders. */
export function oneSignalEvent(id: string, user: string, kind = 'message.push.clicked'): Record<string, unknown> {
  return {
    event: {
      kind,
      id,
      timestamp: Math.floor(Date.now() / 1000),
      app_id: APP_ID,
      subscription_device_type: 'iOS',
      subscription_id: `sub-${user}`,
      onesignal_id: `os-${user}`,
      external_id: user,
      data: {},
    },
    message: { id: 'msg-reliability', name: 'Reliability', template_id: 'tpl-1' },
    user: { language: 'en', tags: {} },
  };
}

export interface EventPlan {
  /** Event ids in sending order; a duplicate repeats an earlier id. */
  sends: string[];
  unique: Set<string>;
}

/** `total` sends of which `duplicateShare` repeat an id sent earlier (OneSignal's resends). */
export function planEvents(total: number, duplicateShare: number, random: () => number, tag: string): EventPlan {
  const sends: string[] = [];
  const unique = new Set<string>();
  for (let i = 0; i < total; i++) {
    if (sends.length > 0 && random() < duplicateShare) sends.push(sends[Math.floor(random() * sends.length)]!);
    else {
      const id = `${tag}-${String(unique.size).padStart(7, '0')}-0000-4000-8000-ev`;
      unique.add(id);
      sends.push(id);
    }
  }
  return { sends, unique };
}

/**
 * Posts the plan to the stream's webhook in batches, `senders` at a time, resending a batch
 * until it is answered 200 (what OneSignal does with a failed delivery). Counts the answers
 * that were neither 200 nor a transport failure nor a 503 (which asks for a resend).
 */
export async function sendEvents(
  w: World,
  plan: EventPlan,
  opts: { batch: number; senders: number; users: string[] },
): Promise<{ requests: number; resent: number; refused: number }> {
  const url = `${w.cluster.url}/hooks/onesignal/events/${w.streamId}`;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${w.streamSecret}` };
  let next = 0;
  let requests = 0;
  let resent = 0;
  let refused = 0;
  const sender = async () => {
    for (;;) {
      const start = next;
      next += opts.batch;
      if (start >= plan.sends.length) return;
      const ids = plan.sends.slice(start, start + opts.batch);
      const body = JSON.stringify(
        ids.map((id) => oneSignalEvent(id, opts.users[Number.parseInt(id.split('-')[1]!, 10) % opts.users.length]!)),
      );
      for (let attempt = 0; ; attempt++) {
        requests++;
        const r = await call(url, { method: 'POST', headers, body });
        if (r.status === 200) break;
        if (r.status !== 0 && r.status !== 503) {
          refused++;
          break;
        }
        resent++;
        await sleep(Math.min(2000, 100 * 2 ** attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: opts.senders }, sender));
  return { requests, resent, refused };
}

/** Amplitude's copy of the stream's events against what was sent: missing, doubled, unknown. */
export function eventFigures(w: World, plan: EventPlan): { missing: number; doubled: number; unexpected: number } {
  const seen = new Map<string, number>();
  for (const e of w.amp.events.list(STREAM_KEY)) {
    const id = String(e.insert_id);
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  let missing = 0;
  let doubled = 0;
  let unexpected = 0;
  for (const id of plan.unique) {
    const n = seen.get(`os-${id}`) ?? 0;
    if (n === 0) missing++;
    if (n > 1) doubled++;
  }
  for (const id of seen.keys()) if (!plan.unique.has(id.replace(/^os-/, ''))) unexpected++;
  return { missing, doubled, unexpected };
}

/** Requests that arrived inside a Retry-After window the emulators announced, on every API. */
export function retryAfterViolations(w: World): number {
  const b = retryAfterViolationsByApi(w);
  return b.onesignal + b.amplitude_cohorts + b.amplitude_events;
}

/** The same, per API (which client to look at when it is not 0). */
export function retryAfterViolationsByApi(
  w: World,
): Record<'onesignal' | 'amplitude_cohorts' | 'amplitude_events', number> {
  const a = w.amp.stats();
  return {
    onesignal: w.os.state.stats().retryAfterViolations,
    amplitude_cohorts: a.cohorts.retryAfterViolations,
    amplitude_events: a.events.retryAfterViolations,
  };
}

/** Dead letters of the stream (events given up on). */
export async function deadEvents(w: World): Promise<number> {
  const r = await w.ctx.store.db
    .selectFrom('stream_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('status', '=', 'dead')
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Waits until every ledger row is settled and no run is running. */
export async function waitForSettled(w: World, timeoutMs: number): Promise<void> {
  await waitFor(
    async () => (await pendingRows(w)) === 0 && (await runs(w)).every((r) => r.status !== 'running'),
    'every row delivered and every run ended',
    timeoutMs,
    250,
  );
}

/** Waits until no event of the stream is pending (forwarded or dead-lettered). */
export async function waitUntilForwarded(w: World, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await pendingEvents(w)) === 0, 'every event to be forwarded', timeoutMs, 250);
}

export const round2 = (x: number) => Math.round(x * 100) / 100;
