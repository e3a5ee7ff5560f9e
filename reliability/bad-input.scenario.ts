/**
 * bad-input: a seeded, reproducible corpus of hostile and valid requests against both webhooks
 * and the admin API of a running `serve` (every defect issue 11 listed among them): no 5xx, no
 * crash, no invalid item stored, no valid item lost (a valid sibling of a bad element
 * included), no answer leaking internals. Then unknown-id requests nobody authenticated, and
 * the heap they leave behind in `serve` (after a full GC, through its inspector).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Answer, api, call, cliJson, type Dialect, freePort, heapAfterGc } from './cluster';
import { APP_ID, COHORT, oneSignalEvent, round2, startWorld, type World } from './world';

export interface BadInputSize {
  /** Cases in the corpus (each one request). */
  cases: number;
  /** Requests with unknown ids, after a warm-up of a fifth as many, for the heap figure. */
  unauthenticated: number;
  seed: number;
}

export const sizes: Record<'full' | 'quick', BadInputSize> = {
  full: { cases: 2_500, unauthenticated: 20_000, seed: 17 },
  quick: { cases: 600, unauthenticated: 4_000, seed: 17 },
};

/** Heap that unauthenticated requests may leave in serve (an unbounded per-id cache: ~2.4 MB per 10,000 ids). */
const HEAP_BOUND_MB = 2;

const FILE_COHORT = 'filecoh';
const NUL = '\u0000';

/** Answer bodies must never carry what a database, a parser or the runtime said. */
const LEAK =
  /insert into|select .* from|stream_events|webhook_inbox|relation "|invalid byte sequence|SQLITE_|sqlite3|syntax error|TypeError|RangeError|Cannot convert|Cannot read prop|node_modules|at [\w.<>]+ \(|\.ts:\d+|kysely|pg-protocol/i;

interface Case {
  kind: string;
  send: () => Promise<Answer>;
}

/**
 * A body over the limit is refused before it is read and the connection closed: the sender may
 * see the 413 or only the closed connection (EPIPE, a reset), both a refusal.
 */
const OVERSIZE = 'oversize';

/** What the corpus expects to find stored, and not to find, afterwards. */
interface Ledger {
  validEvents: Set<string>;
  invalidEvents: Set<string>;
  validMessages: Set<string>;
  invalidMessages: Set<string>;
  validDestinations: Set<string>;
  invalidDestinations: Set<string>;
}

export async function run(dialect: Dialect, size: BadInputSize): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  const inspectPort = await freePort();
  const w = await startWorld({
    dialect,
    label: 'badinput',
    members: 50,
    pool: 50,
    workers: 1,
    seed: size.seed,
    inspectPort,
  });
  const dir = mkdtempSync(join(tmpdir(), 'ampsignal-badinput-'));
  try {
    writeFileSync(join(dir, 'file.csv'), 'user_id\nuser-1\nuser-2\n');
    await cliJson(w.db.url, [
      'cohort',
      'import',
      '--file',
      join(dir, 'file.csv'),
      '--name',
      'File',
      '--id',
      FILE_COHORT,
    ]);

    const random = w.random;
    serial = 0;
    const ledger: Ledger = {
      validEvents: new Set(),
      invalidEvents: new Set(),
      validMessages: new Set(),
      invalidMessages: new Set(),
      validDestinations: new Set(),
      invalidDestinations: new Set(),
    };
    const generators = [
      () => eventBatch(w, random, ledger),
      () => eventTransport(w, random, ledger),
      () => cohortMessage(w, random, ledger),
      () => cohortTransport(w, random, ledger),
      () => apiCase(w, random, ledger),
    ];
    const cases: Case[] = [];
    for (let i = 0; i < size.cases; i++) cases.push(generators[i % generators.length]!());

    const byKind: Record<string, number> = {};
    let serverErrors = 0;
    let connectionErrors = 0;
    let leaks = 0;
    const examples: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
        const a = await c.send();
        const closed = a.status === 0 && !(c.kind === OVERSIZE && /EPIPE|ECONNRESET|UND_ERR_SOCKET/.test(a.text));
        const bad = a.status >= 500 || closed || LEAK.test(a.text);
        if (a.status >= 500) serverErrors++;
        if (closed) connectionErrors++;
        if (LEAK.test(a.text)) leaks++;
        if (bad && examples.length < 5) examples.push(`${c.kind}: ${a.status} ${a.text.slice(0, 200)}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));

    const stored = await storedItems(w);
    const count = (want: Set<string>, have: Set<string>, present: boolean) =>
      [...want].filter((id) => have.has(id) === present).length;
    const invalidStored =
      count(ledger.invalidEvents, stored.events, true) +
      count(ledger.invalidMessages, stored.messages, true) +
      count(ledger.invalidDestinations, stored.destinations, true) +
      [...stored.events].filter((id) => id.includes(NUL)).length +
      [...stored.messages].filter((id) => id.includes(NUL)).length +
      [...stored.destinations].filter((name) => name.includes(NUL)).length;
    const validLost =
      count(ledger.validEvents, stored.events, false) +
      count(ledger.validMessages, stored.messages, false) +
      count(ledger.validDestinations, stored.destinations, false);

    const heap = await unauthenticatedHeap(w, inspectPort, size.unauthenticated);
    const alive = (await call(`${w.cluster.url}/healthz`)).status === 200;
    const figures = {
      cases: cases.length,
      cases_by_kind: byKind,
      valid_items: ledger.validEvents.size + ledger.validMessages.size + ledger.validDestinations.size,
      invalid_items: ledger.invalidEvents.size + ledger.invalidMessages.size + ledger.invalidDestinations.size,
      server_errors_5xx: serverErrors,
      connection_errors: connectionErrors,
      crashes: w.cluster.crashed().length + (alive ? 0 : 1),
      invalid_items_stored: invalidStored,
      valid_items_lost: validLost,
      answers_leaking_internals: leaks,
      unauthenticated_requests: size.unauthenticated,
      heap_growth_mb: round2(heap / 1e6),
      heap_bound_mb: HEAP_BOUND_MB,
      ...(examples.length ? { examples } : {}),
    };
    const met =
      serverErrors === 0 &&
      connectionErrors === 0 &&
      figures.crashes === 0 &&
      invalidStored === 0 &&
      validLost === 0 &&
      leaks === 0 &&
      heap / 1e6 < HEAP_BOUND_MB;
    return { ...figures, seconds: round2((Date.now() - t0) / 1000), targets_met: met };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await w.close();
  }
}

const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
let serial = 0;
const uid = (prefix: string) => `${prefix}-${(++serial).toString(36)}`;

// ---- OneSignal event stream webhook ----

/** One element, valid or not: the valid ones must be stored, the others refused alone. */
function eventElement(random: () => number, ledger: Ledger): unknown {
  const user = `user-${Math.floor(random() * 100)}`;
  if (random() < 0.5) {
    const id = uid('ok');
    ledger.validEvents.add(id);
    const e = oneSignalEvent(id, user, pick(random, VALID_KINDS)) as any;
    const variant = Math.floor(random() * 5);
    if (variant === 1) e.event.timestamp = Date.now(); // milliseconds
    if (variant === 2) e.event.timestamp = String(Math.floor(Date.now() / 1000));
    if (variant === 3) e.user.tags = { plan: 'pro', score: 7, '\u{1F600}': 'x' };
    if (variant === 4) e.message.name = `caf\u00e9 \u202e ${'x'.repeat(3000)}`;
    return e;
  }
  const id = uid('bad');
  const e = oneSignalEvent(id, user) as any;
  const mutation = pick(random, EVENT_MUTATIONS);
  mutation(e, id);
  if (e.event?.id === id) ledger.invalidEvents.add(id);
  return mutation === notAnObject ? pick(random, ['a string', 42, null, true]) : e;
}

const VALID_KINDS = [
  'message.push.clicked',
  'message.push.received',
  'message.email.opened',
  'constructor',
  'toString',
  '__proto__',
  'valueOf',
  'hasOwnProperty',
] as const;

const notAnObject = () => {};
type Mutation = (e: any, id: string) => void;
const EVENT_MUTATIONS: Mutation[] = [
  (e) => (e.event.timestamp = 99999999999), // year 5138
  (e) => (e.event.timestamp = 1e15),
  (e) => (e.event.timestamp = 253402300800),
  (e) => (e.event.timestamp = '0x10'),
  (e) => (e.event.timestamp = 1.5),
  (e) => (e.event.timestamp = 1e20),
  (e) => (e.event.timestamp = -1),
  (e) => (e.event.timestamp = 'yesterday'),
  (e) => (e.user.tags = { toString: 1, plan: { toString: 1 } }),
  (e) => (e.user.tags = { list: [1, 2] }),
  (e, id) => (e.event.id = `${id}${NUL}`),
  (e) => delete e.event.id,
  (e) => (e.event.id = { $gt: '' }),
  (e) => delete e.event.kind,
  (e) => (e.event.kind = { toString: 1 }),
  (e) => (e.event.kind = `message.${NUL}.sent`),
  (e) => (e.event = 'not an object'),
  notAnObject,
];

function eventBatch(w: World, random: () => number, ledger: Ledger): Case {
  const n = 1 + Math.floor(random() * 5);
  const elements = Array.from({ length: n }, () => eventElement(random, ledger));
  const body = JSON.stringify(n === 1 && random() < 0.5 ? elements[0] : elements);
  return {
    kind: 'onesignal_events',
    send: () =>
      call(`${w.cluster.url}/hooks/onesignal/events/${w.streamId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${w.streamSecret}` },
        body,
      }),
  };
}

/** Hostile requests around the events: wrong secrets, odd ids, odd bodies and content types. */
function eventTransport(w: World, random: () => number, ledger: Ledger): Case {
  const base = `${w.cluster.url}/hooks/onesignal/events`;
  const auth = { authorization: `Bearer ${w.streamSecret}` };
  const json = { 'content-type': 'application/json' };
  const unauth = () => {
    const id = uid('unauth');
    ledger.invalidEvents.add(id);
    return JSON.stringify([oneSignalEvent(id, 'user-1')]);
  };
  const variants: Array<() => Promise<Answer>> = [
    () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json }, body: unauth() }),
    () =>
      call(`${base}/${w.streamId}`, {
        method: 'POST',
        headers: { ...json, authorization: 'Bearer wrong-secret-guess' },
        body: unauth(),
      }),
    () => call(`${base}/str_unknown00000`, { method: 'POST', headers: { ...json, ...auth }, body: unauth() }),
    () => call(`${base}/str_%00evil`, { method: 'POST', headers: { ...json, ...auth }, body: unauth() }),
    () => call(`${base}/${'s'.repeat(3000)}`, { method: 'POST', headers: { ...json, ...auth }, body: unauth() }),
    () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json, ...auth }, body: '{"event": ' }),
    () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json, ...auth }, body: '' }),
    () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json, ...auth }, body: '[]' }),
    () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json, ...auth }, body: '"just a string"' }),
    () =>
      call(`${base}/${w.streamId}`, {
        method: 'POST',
        headers: { ...json, ...auth },
        body: `${'['.repeat(20_000)}${']'.repeat(20_000)}`,
      }),
    () => {
      // text/plain is read as JSON like any other content type: the valid event is stored.
      const id = uid('ok');
      ledger.validEvents.add(id);
      return call(`${base}/${w.streamId}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', ...auth },
        body: JSON.stringify(oneSignalEvent(id, 'user-2')),
      });
    },
  ];
  if (random() < 0.05) {
    // Over the body limit: refused whole, nothing stored.
    const id = uid('huge');
    ledger.invalidEvents.add(id);
    const e = oneSignalEvent(id, 'user-3') as any;
    e.message.name = 'x'.repeat(6 * 1024 * 1024);
    const body = JSON.stringify(e);
    return {
      kind: OVERSIZE,
      send: () => call(`${base}/${w.streamId}`, { method: 'POST', headers: { ...json, ...auth }, body }),
    };
  }
  return { kind: 'onesignal_transport', send: pick(random, variants) };
}

// ---- Amplitude cohort webhook ----

function cohortMessage(w: World, random: () => number, ledger: Ledger): Case {
  const now = Math.floor(Date.now() / 1000);
  const users = Array.from({ length: 1 + Math.floor(random() * 3) }, () => ({
    user_id: `user-${Math.floor(random() * 100)}`,
  }));
  const message: Record<string, unknown> = {
    cohort_id: COHORT,
    cohort_name: 'Reliability',
    in_cohort: random() < 0.5,
    computed_time: now,
    users,
  };
  if (random() < 0.5) {
    const id = uid('ok');
    ledger.validMessages.add(id);
    message.message_id = id;
    // Odd but acceptable: ordered at the time we received it, or read in the unit it is in.
    const variant = Math.floor(random() * 5);
    if (variant === 1) message.computed_time = 9_999_999_999; // far future
    if (variant === 2) message.computed_time = Date.now(); // milliseconds in the seconds field
    if (variant === 3) message.in_cohort = 'true';
    if (variant === 4) {
      delete message.computed_time;
      message.compute_time = now;
    }
  } else {
    const id = uid('bad');
    message.message_id = id;
    pick(random, MESSAGE_MUTATIONS)(message, id);
    if (message.message_id === id) ledger.invalidMessages.add(id);
  }
  const body = JSON.stringify(message);
  return {
    kind: 'amplitude_cohorts',
    send: () =>
      call(`${w.cluster.url}/hooks/amplitude/cohorts/${w.sourceId}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${w.sourceSecret}` },
        body,
      }),
  };
}

const MESSAGE_MUTATIONS: Array<(m: Record<string, unknown>, id: string) => void> = [
  (m) => (m.cohort_id = `coh${NUL}1`),
  (m, id) => (m.message_id = `${id}${NUL}`),
  (m) => (m.cohort_name = `name${NUL}`),
  (m) => (m.cohort_id = FILE_COHORT), // a file-imported cohort: not this source's to change
  (m) => (m.computed_time = 1e20),
  (m) => (m.computed_time = -5),
  (m) => (m.computed_time = 'soon'),
  (m) => delete m.in_cohort,
  (m) => (m.in_cohort = 'maybe'),
  (m) => (m.users = 'everyone'),
  (m) => delete m.users,
  (m) => (m.cohort_id = ''),
  (m) => (m.cohort_id = 'c'.repeat(300)),
  (m) => (m.cohort_name = 'n'.repeat(2000)),
  (m) => (m.cohort_id = { toString: 1 }),
];

function cohortTransport(w: World, random: () => number, ledger: Ledger): Case {
  const base = `${w.cluster.url}/hooks/amplitude/cohorts`;
  const message = () => {
    const id = uid('unauth');
    ledger.invalidMessages.add(id);
    return JSON.stringify({ cohort_id: COHORT, in_cohort: true, message_id: id, users: [{ user_id: 'user-1' }] });
  };
  const json = { 'content-type': 'application/json' };
  const auth = { authorization: `Bearer ${w.sourceSecret}` };
  const variants: Array<() => Promise<Answer>> = [
    () => call(`${base}/${w.sourceId}`, { method: 'POST', headers: json, body: message() }),
    () =>
      call(`${base}/${w.sourceId}`, {
        method: 'POST',
        headers: { ...json, authorization: 'Bearer guess' },
        body: message(),
      }),
    () => call(`${base}/src_unknown0000`, { method: 'POST', headers: { ...json, ...auth }, body: message() }),
    () => call(`${base}/src_%00x`, { method: 'POST', headers: { ...json, ...auth }, body: message() }),
    () => call(`${base}/${'s'.repeat(3000)}`, { method: 'POST', headers: { ...json, ...auth }, body: message() }),
    () => call(`${base}/${w.sourceId}`, { method: 'POST', headers: { ...json, ...auth }, body: '{"users": [' }),
    () => call(`${base}/${w.sourceId}`, { method: 'POST', headers: { ...json, ...auth }, body: 'null' }),
    () => {
      // A large message (parsed on the worker thread), valid, as text/plain.
      const id = uid('ok');
      ledger.validMessages.add(id);
      const users = Array.from({ length: 400 }, (_, i) => ({ user_id: `user-${i % 100}`, user_properties: { i } }));
      return call(`${base}/${w.sourceId}`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain', ...auth },
        body: JSON.stringify({
          cohort_id: COHORT,
          in_cohort: true,
          message_id: id,
          computed_time: Math.floor(Date.now() / 1000),
          users,
        }),
      });
    },
    () => {
      // A large message with a NUL deep inside: refused on the worker thread.
      const id = uid('bad');
      ledger.invalidMessages.add(id);
      const users = Array.from({ length: 400 }, (_, i) => ({ user_id: `user-${i}` }));
      return call(`${base}/${w.sourceId}`, {
        method: 'POST',
        headers: { ...json, ...auth },
        body: JSON.stringify({ cohort_id: `c${NUL}`, in_cohort: true, message_id: id, users }),
      });
    },
  ];
  return { kind: 'amplitude_transport', send: pick(random, variants) };
}

// ---- admin API ----

/** A version-4 UUID from the seeded generator (the corpus is reproducible). */
function uuidFrom(random: () => number): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function apiCase(w: World, random: () => number, ledger: Ledger): Case {
  const base = w.cluster.url;
  const valid = () => ({ app_id: uuidFrom(random), api_key: 'api-case-key', api_url: 'http://127.0.0.1:9' });
  const variants: Array<() => Promise<Answer>> = [
    () => {
      const name = uid('api-ok');
      ledger.validDestinations.add(name);
      return api(base, '/destinations', 'POST', { name, ...valid() });
    },
    ...DESTINATION_MUTATIONS.map((mutate) => () => {
      const name = uid('api-bad');
      const body: Record<string, unknown> = { name, ...valid() };
      mutate(body);
      if (body.name === name) ledger.invalidDestinations.add(name);
      return api(base, '/destinations', 'POST', body);
    }),
    () => api(base, '/syncs', 'POST', { cohort_id: 'no-such-cohort', destination_id: 'dst_nope' }),
    () => api(base, '/syncs', 'POST', { cohort_id: COHORT, destination_id: 'dst_nope', cadence: 'sometimes' }),
    () => api(base, '/syncs', 'POST', { cohort_id: `x${NUL}`, destination_id: { $ne: 1 } }),
    () => api(base, `/syncs/${w.syncId}/run`, 'POST', { dry_run: 'yes please' }),
    () => api(base, '/runs/%00'),
    () => api(base, `/runs/${'r'.repeat(5000)}`),
    () => api(base, `/syncs/syn_x'%20OR%201=1--`),
    () => api(base, '/destinations/..%2F..%2Fetc%2Fpasswd'),
    () => api(base, '/dead-letters?limit=-1&before=zzz'),
    () => api(base, `/syncs/${w.syncId}/runs?limit=1e9`),
    () => api(base, `/runs/run_nope/records?outcome=${NUL}`),
    () =>
      call(`${base}/api/v1/destinations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer reliability-admin-token-7f3c9e' },
        body: '{"name": ',
      }),
  ];
  return { kind: 'admin_api', send: pick(random, variants) };
}

const DESTINATION_MUTATIONS: Array<(b: Record<string, unknown>) => void> = [
  (b) => (b.name = `dest${NUL}`),
  (b) => delete b.app_id,
  (b) => (b.app_id = 'not-a-uuid'),
  (b) => (b.app_id = `${APP_ID}${NUL}`),
  (b) => (b.api_url = 'ftp://example.com'),
  (b) => (b.api_url = 'not a url'),
  (b) => (b.rate_limit_per_second = -1),
  (b) => (b.rate_limit_per_second = 'fast'),
  (b) => (b.rate_limit_per_second = 1e12),
  (b) => (b.name = 'n'.repeat(10_000)),
  (b) => (b.name = { toString: 1 }),
  (b) => delete b.api_key,
  (b) => (b.tag_key_template = 'no placeholder'),
];

/** Event ids, message ids and destination names in the database. */
async function storedItems(w: World) {
  const db = w.ctx.store.db;
  const events = await db.selectFrom('stream_events').select('event_id').execute();
  const messages = await db.selectFrom('webhook_inbox').select('message_id').execute();
  const destinations = await db.selectFrom('destinations').select('name').execute();
  return {
    events: new Set(events.map((r) => r.event_id)),
    messages: new Set(messages.map((r) => r.message_id)),
    destinations: new Set(destinations.map((r) => r.name)),
  };
}

/**
 * Heap growth of serve over `n` requests to the cohort hook with random unknown source ids (and
 * a wrong secret), after a warm-up of n/5 that fills every bounded cache.
 */
async function unauthenticatedHeap(w: World, inspectPort: number, n: number): Promise<number> {
  const flood = async (count: number) => {
    let next = 0;
    const sender = async () => {
      while (next++ < count) {
        const id = `src_${crypto.randomUUID().replace(/-/g, '')}`;
        await call(`${w.cluster.url}/hooks/amplitude/cohorts/${id}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer guess' },
          body: '{}',
        });
      }
    };
    await Promise.all(Array.from({ length: 16 }, sender));
  };
  await flood(Math.ceil(n / 5));
  const before = await heapAfterGc(inspectPort);
  await flood(n);
  return (await heapAfterGc(inspectPort)) - before;
}
