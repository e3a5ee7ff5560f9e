import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dropConnection, type FaultKind, hangConnection, RetryAfterWindows } from '../faults';
import {
  BATCH_PATH,
  BLOCKED_IDS,
  HTTP_V2_ERRORS as E,
  HTTP_V2_MAX_PROPERTY_DEPTH,
  HTTP_V2_MAX_STRING,
  HTTP_V2_PATH,
} from './constants';
import { delay, type FaultPlan, type ForcedAnswer, type ResolvedOptions } from './options';

export type StoredEvent = Record<string, unknown> & {
  event_type: string;
  insert_id?: string;
  server_upload_time: number;
};

export interface EventStats {
  requests: Record<string, number>;
  /** Events stored (duplicates excluded). */
  ingested: number;
  /** Events accepted with an insert_id already seen in the dedupe window. */
  duplicates: number;
  /** Events named in throttled_events of a 429. */
  throttled: number;
  /** Batches ingested although the answer was a 5xx or a dropped connection (the ambiguous case). */
  ingestedOnError: number;
  /** Injected faults by kind. */
  faults: Record<FaultKind, number>;
  /** Requests carrying a user or device still inside a Retry-After window announced for it. */
  retryAfterViolations: number;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

const DEFAULT_BODIES: Record<number, Record<string, unknown>> = {
  400: { code: 400, error: E.invalidFields },
  403: { code: 403, error: 'Forbidden' },
  413: { code: 413, error: E.tooLarge },
  429: {
    code: 429,
    error: E.throttled,
    eps_threshold: 30,
    throttled_devices: {},
    throttled_users: {},
    throttled_events: [],
  },
  // [U] 5xx bodies are undocumented; every body carries `code` because the TypeScript SDK reads
  // the status from it.
  500: { code: 500, error: 'Internal Server Error' },
  502: { code: 502, error: 'Bad Gateway' },
  503: { code: 503, error: 'Service Unavailable' },
  504: { code: 504, error: 'Gateway Timeout' },
};

// Statuses after which Amplitude says the batch "may or may not have been accepted".
const AMBIGUOUS = new Set([0, 500, 502, 504]);

type FieldMap = Record<string, number[]>;

/** HTTP V2 (/2/httpapi) and Batch (/batch) ingestion with Amplitude's validation, limits and dedupe. */
export class EventsHalf {
  private readonly store = new Map<string, StoredEvent[]>();
  private readonly seen = new Map<string, number>();
  /** Per (api key, user/device id): recent ingests as [time, count] pairs, for the EPS window. */
  private readonly recent = new Map<string, Array<[number, number]>>();
  private readonly retryAfter = new RetryAfterWindows();
  private stats = freshStats();

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly apiKeys: Set<string>,
    readonly faults: FaultPlan,
    private readonly random: () => number,
  ) {}

  list(apiKey?: string): StoredEvent[] {
    if (apiKey) return (this.store.get(apiKey) ?? []).slice();
    return [...this.store.values()].flat();
  }

  forceNext(status: number, body?: unknown, count = 1, opts: { ingest?: boolean } = {}): void {
    const answer: ForcedAnswer = { status };
    if (body !== undefined) answer.body = body;
    if (opts.ingest !== undefined) answer.ingest = opts.ingest;
    this.faults.forceNext(answer, count);
  }

  getStats(): EventStats {
    return {
      ...this.stats,
      requests: { ...this.stats.requests },
      faults: { ...this.faults.counts },
      retryAfterViolations: this.retryAfter.violations,
    };
  }

  reset(): void {
    this.store.clear();
    this.seen.clear();
    this.recent.clear();
    this.faults.clear();
    this.retryAfter.clear();
    this.stats = freshStats();
  }

  routes(app: FastifyInstance): void {
    this.retryAfter.install(app);
    // Raw bytes for every content type (or none): size limits count decompressed bytes, and
    // malformed JSON must get Amplitude's 400 body, not fastify's.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: this.opts.batchMaxBytes * 2 }, (_req, body, done) =>
      done(null, body),
    );
    app.setErrorHandler((err: { statusCode?: number }, _req, reply) => {
      const status = err.statusCode === 413 ? 413 : err.statusCode && err.statusCode < 500 ? 400 : 500;
      this.count(String(status));
      const body =
        status === 413
          ? DEFAULT_BODIES[413]
          : status === 400
            ? { code: 400, error: E.invalidJson }
            : DEFAULT_BODIES[500];
      return reply.code(status).send(body);
    });
    app.post(HTTP_V2_PATH, (req, reply) => this.handle(req, reply, this.opts.maxBytes));
    app.post(BATCH_PATH, (req, reply) => this.handle(req, reply, this.opts.batchMaxBytes));
  }

  private count(key: string): void {
    this.stats.requests[key] = (this.stats.requests[key] ?? 0) + 1;
  }

  private async handle(req: FastifyRequest, reply: FastifyReply, maxBytes: number): Promise<FastifyReply> {
    await delay(this.faults.latencyMs);
    // The client's conduct first: ids it was told to hold back (parsed only while a window is open).
    if (this.retryAfter.open()) {
      const decoded = decode(req, maxBytes);
      if (!('status' in decoded)) this.retryAfter.arrived(idScopes(decoded.body), req.raw.socket);
    }
    const fault = this.faults.next();
    let answer: Answer;
    if (fault) {
      if (fault.hang) {
        this.count('timeout');
        await hangConnection(req, reply, this.faults.hangMs);
        return reply;
      }
      const ingest = fault.ingest ?? (AMBIGUOUS.has(fault.status) && this.opts.ingestOnError && this.random() < 0.5);
      if (ingest && this.process(req, maxBytes).status === 200) this.stats.ingestedOnError++;
      if (fault.status === 0) {
        this.count('dropped');
        dropConnection(req, reply);
        return reply;
      }
      answer = {
        status: fault.status,
        body: (fault.body as Record<string, unknown>) ?? DEFAULT_BODIES[fault.status] ?? { code: fault.status },
      };
      if (fault.retryAfterSeconds !== undefined) {
        answer = this.throttleAll(req, maxBytes, fault.retryAfterSeconds, fault.body);
        reply.header('retry-after', String(fault.retryAfterSeconds));
      }
    } else {
      answer = this.process(req, maxBytes);
    }
    this.count(String(answer.status));
    return reply.code(answer.status).type('application/json').send(answer.body);
  }

  /**
   * An injected 429: every event of the batch throttled, its users and devices told to wait
   * `seconds` (Retry-After). Amplitude itself sends no Retry-After; a client that honours the
   * header, or holds throttled ids longer, stays out of the window.
   */
  private throttleAll(req: FastifyRequest, maxBytes: number, seconds: number, body: unknown): Answer {
    const decoded = decode(req, maxBytes);
    const events = 'status' in decoded ? [] : eventsOf(decoded.body);
    const throttled_users: Record<string, number> = {};
    const throttled_devices: Record<string, number> = {};
    for (const e of events) {
      if (typeof e.user_id === 'string') throttled_users[e.user_id] = this.opts.epsThreshold + 1;
      if (typeof e.device_id === 'string') throttled_devices[e.device_id] = this.opts.epsThreshold + 1;
    }
    for (const scope of 'status' in decoded ? [] : idScopes(decoded.body)) this.retryAfter.announce(scope, seconds);
    this.stats.throttled += events.length;
    return {
      status: 429,
      body: (body as Record<string, unknown>) ?? {
        code: 429,
        error: E.throttled,
        eps_threshold: this.opts.epsThreshold,
        throttled_devices,
        throttled_users,
        throttled_events: events.map((_, i) => i),
      },
    };
  }

  /** Validates, throttles, dedupes and stores one request; all or nothing. */
  private process(req: FastifyRequest, maxBytes: number): Answer {
    const decoded = decode(req, maxBytes);
    if ('status' in decoded) return decoded;
    const { bytes, body: b } = decoded;
    if (b.api_key === undefined || b.api_key === null || b.api_key === '')
      return bad(E.missingField, { missing_field: 'api_key' });
    if (typeof b.api_key !== 'string' || !this.apiKeys.has(b.api_key)) return bad(E.invalidApiKey);
    const apiKey = b.api_key;
    // [U] An empty events array is not documented; refusing it is the strict reading.
    if (b.events === undefined || b.events === null || (Array.isArray(b.events) && b.events.length === 0)) {
      return bad(E.missingField, { missing_field: 'events' });
    }
    if (!Array.isArray(b.events) || b.events.some((e) => typeof e !== 'object' || e === null || Array.isArray(e))) {
      return bad(E.invalidEventJson);
    }
    const events = b.events as Array<Record<string, unknown>>;
    // [U] The docs say both "< 2000 events" and "up to 2,000"; 2000 itself is refused (strict reading).
    if (events.length >= this.opts.maxEvents) return tooLarge();

    let minLen = this.opts.minIdLength;
    const options = b.options as Record<string, unknown> | undefined;
    if (options !== undefined && options !== null) {
      if (typeof options !== 'object' || Array.isArray(options)) return bad(E.invalidJson);
      const m = options.min_id_length;
      if (m !== undefined) {
        if (typeof m !== 'number' || !Number.isInteger(m) || m < 1)
          return bad(E.invalidFields, { events_with_invalid_fields: { min_id_length: [] } });
        minLen = m;
      }
    }

    const invalid: FieldMap = {};
    const missing: FieldMap = {};
    const idLengths: FieldMap = {};
    events.forEach((e, i) => {
      validateEvent(e, i, minLen, invalid, missing, idLengths);
    });
    if (Object.keys(invalid).length + Object.keys(missing).length + Object.keys(idLengths).length > 0) {
      // Conservative: the whole request is refused and nothing in it is ingested; the client
      // drops the listed indices and resends the rest.
      return bad(E.invalidFields, {
        events_with_invalid_fields: invalid,
        events_with_missing_fields: missing,
        events_with_invalid_id_lengths: idLengths,
      });
    }

    const now = Date.now();
    const throttled = this.throttle(apiKey, events, now);
    if (throttled) {
      this.stats.throttled += throttled.throttled_events.length;
      return {
        status: 429,
        body: { code: 429, error: E.throttled, eps_threshold: this.opts.epsThreshold, ...throttled },
      };
    }

    const stored = this.store.get(apiKey) ?? [];
    this.store.set(apiKey, stored);
    for (const e of events) {
      const insertId = typeof e.insert_id === 'string' ? e.insert_id : undefined;
      if (insertId !== undefined) {
        // "ignores subsequent events sent with the same insert_id on the same device_id (if the
        // event has a device_id value)": keyed per project and device (else user).
        const key = `${apiKey}\u0000${String(e.device_id ?? `u:${String(e.user_id)}`)}\u0000${insertId}`;
        const at = this.seen.get(key);
        if (at !== undefined && at + this.opts.dedupeWindowMs > now) {
          this.stats.duplicates++;
          continue;
        }
        this.seen.set(key, now);
      }
      stored.push({ ...e, server_upload_time: now } as StoredEvent);
      this.stats.ingested++;
    }
    return {
      status: 200,
      body: { code: 200, events_ingested: events.length, payload_size_bytes: bytes.length, server_upload_time: now },
    };
  }

  /**
   * Per user_id and per device_id, events over the last `epsWindowMs`. When accepting this
   * request would push any id above epsThreshold events/s, the request is refused with 429 and
   * (conservative reading) none of it is ingested. epsThreshold 0 turns throttling off.
   */
  private throttle(apiKey: string, events: Array<Record<string, unknown>>, now: number) {
    if (this.opts.epsThreshold <= 0) return undefined;
    const windowMs = this.opts.epsWindowMs;
    const allowed = (this.opts.epsThreshold * windowMs) / 1000;
    const incoming = new Map<string, number>();
    for (const e of events) {
      for (const k of idKeys(e)) incoming.set(k, (incoming.get(k) ?? 0) + 1);
    }
    const over = new Map<string, number>();
    for (const [k, n] of incoming) {
      const key = `${apiKey}\u0000${k}`;
      const entries = (this.recent.get(key) ?? []).filter(([t]) => t > now - windowMs);
      if (entries.length) this.recent.set(key, entries);
      else this.recent.delete(key);
      const total = entries.reduce((a, [, c]) => a + c, 0) + n;
      if (total > allowed) over.set(k, Math.round((total * 1000) / windowMs));
    }
    if (over.size === 0) {
      for (const [k, n] of incoming) {
        const key = `${apiKey}\u0000${k}`;
        const entries = this.recent.get(key) ?? [];
        entries.push([now, n]);
        this.recent.set(key, entries);
      }
      return undefined;
    }
    const throttled_users: Record<string, number> = {};
    const throttled_devices: Record<string, number> = {};
    for (const [k, eps] of over) {
      if (k.startsWith('u:')) throttled_users[k.slice(2)] = eps;
      else throttled_devices[k.slice(2)] = eps;
    }
    const throttled_events: number[] = [];
    events.forEach((e, i) => {
      if (idKeys(e).some((k) => over.has(k))) throttled_events.push(i);
    });
    return { throttled_devices, throttled_users, throttled_events };
  }
}

function freshStats(): Omit<EventStats, 'faults' | 'retryAfterViolations'> {
  return { requests: {}, ingested: 0, duplicates: 0, throttled: 0, ingestedOnError: 0 };
}

/** The request's JSON object (gunzipped, size-checked), or the 400/413 answer it deserves. */
function decode(req: FastifyRequest, maxBytes: number): { bytes: Buffer; body: Record<string, unknown> } | Answer {
  const raw = req.body as Buffer | undefined;
  if (!raw || raw.length === 0) return bad(E.missingBody);
  let bytes: Buffer = raw;
  if (/\bgzip\b/i.test(String(req.headers['content-encoding'] ?? ''))) {
    try {
      bytes = gunzipSync(raw, { maxOutputLength: maxBytes + 1 });
    } catch (e) {
      if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return tooLarge();
      return bad(E.invalidJson);
    }
  }
  // "< 1 MB", counted after decompression.
  if (bytes.length >= maxBytes) return tooLarge();
  let body: unknown;
  try {
    body = JSON.parse(bytes.toString('utf8'));
  } catch {
    return bad(E.invalidJson);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad(E.invalidJson);
  return { bytes, body: body as Record<string, unknown> };
}

function eventsOf(body: Record<string, unknown>): Array<Record<string, unknown>> {
  if (!Array.isArray(body.events)) return [];
  return body.events.filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null);
}

/** Retry-After scopes of a batch: each user and device, per project. */
function idScopes(body: Record<string, unknown>): string[] {
  const apiKey = String(body.api_key);
  return [...new Set(eventsOf(body).flatMap((e) => idKeys(e).map((k) => `${apiKey}|${k}`)))];
}

function idKeys(e: Record<string, unknown>): string[] {
  const keys: string[] = [];
  if (typeof e.user_id === 'string') keys.push(`u:${e.user_id}`);
  if (typeof e.device_id === 'string') keys.push(`d:${e.device_id}`);
  return keys;
}

function bad(error: string, extra: Record<string, unknown> = {}): Answer {
  return { status: 400, body: { code: 400, error, ...extra } };
}

function tooLarge(): Answer {
  return { status: 413, body: { code: 413, error: E.tooLarge } };
}

function add(map: FieldMap, field: string, i: number): void {
  map[field] ??= [];
  const list = map[field];
  if (list[list.length - 1] !== i) list.push(i);
}

const PROPERTY_OBJECTS = ['event_properties', 'user_properties', 'groups', 'group_properties'];
const INTEGER_FIELDS = ['time', 'session_id', 'event_id'];

function validateEvent(
  e: Record<string, unknown>,
  i: number,
  minLen: number,
  invalid: FieldMap,
  missing: FieldMap,
  idLengths: FieldMap,
): void {
  const absent = (v: unknown) => v === undefined || v === null;
  if (absent(e.event_type) || e.event_type === '') add(missing, 'event_type', i);
  else if (typeof e.event_type !== 'string') add(invalid, 'event_type', i);

  let ids = 0;
  for (const field of ['user_id', 'device_id'] as const) {
    const v = e[field];
    if (absent(v)) continue;
    ids++;
    if (typeof v !== 'string') add(invalid, field, i);
    // All-zero device ids are dropped with an error, like the listed placeholder ids.
    else if (BLOCKED_IDS.has(v.toLowerCase()) || (field === 'device_id' && /^[0-]+$/.test(v))) add(invalid, field, i);
    // Shorter ids are "removed" by Amplitude; rejecting them is the conservative reading.
    else if (v.length < minLen) add(idLengths, field, i);
  }
  if (ids === 0) add(missing, 'user_id', i);

  // time (and the other integer fields) must be integer milliseconds: "any other format → 400".
  for (const f of INTEGER_FIELDS) {
    const v = e[f];
    if (!absent(v) && !(typeof v === 'number' && Number.isSafeInteger(v))) add(invalid, f, i);
  }
  if (!absent(e.insert_id) && typeof e.insert_id !== 'string') add(invalid, 'insert_id', i);

  for (const [f, v] of Object.entries(e)) {
    if (PROPERTY_OBJECTS.includes(f)) {
      if (absent(v)) continue;
      if (typeof v !== 'object' || Array.isArray(v) || !withinLimits(v, 1)) add(invalid, f, i);
    } else if (typeof v === 'string' && v.length > HTTP_V2_MAX_STRING) {
      add(invalid, f, i);
    }
  }
}

/** Depth ≤ 40 and every string ≤ 1024 characters, recursively. */
function withinLimits(v: unknown, depth: number): boolean {
  if (typeof v === 'string') return v.length <= HTTP_V2_MAX_STRING;
  if (typeof v !== 'object' || v === null) return true;
  if (depth > HTTP_V2_MAX_PROPERTY_DEPTH) return false;
  const values = Array.isArray(v) ? v : Object.values(v);
  return values.every((x) => withinLimits(x, depth + 1));
}
