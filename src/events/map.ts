import { z } from 'zod';
import { HTTP_V2_MAX_STRING } from '../connectors/amplitude/constants';
import { hasNul, NUL_PROBLEM } from '../store/text';
import { channelOf, eventTypeFor, MESSAGE_TYPES } from './names';

/**
 * Validation and mapping of one OneSignal Event Streams event into one Amplitude HTTP V2 event.
 * Mapping happens at receive time, so a mapping problem shows in the webhook answer at once and
 * the forwarder only ships stored payloads.
 */

/** The Amplitude HTTP V2 event we store in the outbox and send as is. */
export interface AmplitudeEvent {
  event_type: string;
  user_id?: string;
  device_id?: string;
  time: number;
  insert_id: string;
  event_properties: Record<string, unknown>;
}

export type MappedEvent =
  | {
      ok: true;
      eventId: string;
      kind: string;
      amplitude: AmplitudeEvent /** set when Amplitude cannot take it */;
      deadReason?: string;
    }
  | { ok: false; problem: string };

export interface MapOptions {
  /** Per-stream kind → event_type overrides. */
  eventNames?: Readonly<Record<string, string>> | null;
  /** Cohort ids for the tag keys ampsignal writes; see cohortTags.ts. */
  cohortIdsFromTags?: (tags: Record<string, unknown>) => string[];
  receivedAt: number;
}

// Ids Amplitude refuses with a 400 (reference amplitude-api.md §5.2); treated as absent so an
// event carrying one still goes out under its other id instead of failing the whole batch.
const INVALID_IDS = new Set([
  'anonymous',
  'nil',
  'none',
  'null',
  'n/a',
  'na',
  'undefined',
  'unknown',
  '',
  '00000000-0000-0000-0000-000000000000',
  '{}',
  'lmy47d',
  '0',
  '-1',
]);

const DANGEROUS_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * OneSignal's own example renders a flat object with dotted keys (`"event.kind": …`); the README
 * template renders nested objects. Both (and mixtures) become the nested shape here.
 */
export function unflatten(input: Record<string, unknown>): Record<string, unknown> {
  let hasDotted = false;
  for (const k in input)
    if (k.includes('.')) {
      hasDotted = true;
      break;
    }
  if (!hasDotted) return input;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    const parts = key.split('.');
    if (parts.some((p) => DANGEROUS_KEYS.has(p))) continue;
    let node = out;
    for (let i = 0; i < parts.length - 1; i++) {
      const p = parts[i]!;
      if (!isPlainObject(node[p])) node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    const last = parts[parts.length - 1]!;
    if (isPlainObject(value) && isPlainObject(node[last])) Object.assign(node[last] as object, value);
    else node[last] = value;
  }
  return out;
}

// An optional JSON object, passed through as is (z.record would copy it key by key on the
// receiver's hot path); anything else is dropped rather than failing the event.
const looseRecord = z.custom<Record<string, unknown>>(isPlainObject).optional().catch(undefined);

const missingOr = (what: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? 'is missing' : `must be ${what}`;

// Liquid renders absent values as "" and may leave numbers unquoted; both are accepted.
const optText = z
  .union([z.string(), z.number(), z.boolean(), z.null()])
  .optional()
  .transform((v) => (v === null || v === undefined || v === '' ? undefined : String(v)));

const required = (name: string) =>
  z
    .union([z.string(), z.number()], { error: missingOr('a string') })
    .transform((v) => String(v).trim())
    .pipe(z.string().min(1, `${name} is empty`).max(256, `${name} is longer than 256 characters`));

const eventSchema = z.object(
  {
    event: z
      .object(
        {
          kind: required('event.kind').pipe(
            z
              .string()
              .regex(
                /^[A-Za-z0-9_.:-]+$/,
                'event.kind has characters other than letters, digits, "_", ".", ":" or "-"',
              ),
          ),
          // Stored as a text column: the NUL rule of store/text.ts.
          id: required('event.id').refine((s) => !hasNul(s), `event.id ${NUL_PROBLEM}`),
          timestamp: z.union([z.number(), z.string(), z.null()], { error: 'must be unix seconds' }).optional(),
          datetime: optText,
          app_id: optText,
          subscription_device_type: optText,
          subscription_id: optText,
          onesignal_id: optText,
          external_id: optText,
          data: looseRecord,
        },
        { error: missingOr('an object') },
      )
      .loose(),
    message: looseRecord,
    user: z
      .object({
        external_id: optText,
        onesignal_id: optText,
        language: optText,
        tags: z.unknown().optional(),
        subscription: looseRecord,
      })
      .loose()
      .optional()
      .catch(undefined),
  },
  { error: 'must be a JSON object' },
);

type ParsedEvent = z.infer<typeof eventSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const path = i.path.map(String).join('.');
      return path ? `${path} ${i.message}` : i.message;
    })
    .join('; ');
}

// An event's time is what Amplitude charts it at, so a time that cannot be the event's is refused
// (per event) rather than forwarded. OneSignal renders unix seconds; milliseconds are read too,
// told apart by magnitude: within the range below the two never overlap (seconds are 9.5e8 to
// 2e9, milliseconds 9.5e11 to 2e12), so a magnitude trick never turns nonsense into a plausible
// date (253402300800, the year 10000 in seconds, would have been read as 1978 in milliseconds).
// Before 2000 no OneSignal event can be; up to an hour ahead allows for clocks that disagree.
const EARLIEST_EVENT_MS = Date.UTC(2000, 0, 1);
const FUTURE_SLACK_MS = 3_600_000;
const MILLISECONDS_FROM = 1e11;
const DECIMAL = /^\d+(\.\d+)?$/;

function timeProblem(field: string, shown: string): string {
  return `${field} ${shown} is not a time between 2000-01-01 and now: send unix seconds, e.g. 1708559115`;
}

/** Milliseconds of `event.timestamp` (or `event.datetime`), the receive time if neither, or the problem. */
function toMillis(
  ts: number | string | null | undefined,
  datetime: string | undefined,
  receivedAt: number,
): number | string {
  const inRange = (ms: number) => ms >= EARLIEST_EVENT_MS && ms <= receivedAt + FUTURE_SLACK_MS;
  if (ts !== undefined && ts !== null && ts !== '') {
    // Decimal digits only: Number() would also read "0x10", "1e3" or " 12 ".
    const n = typeof ts === 'number' ? ts : DECIMAL.test(ts) ? Number(ts) : Number.NaN;
    const ms = Math.round(n < MILLISECONDS_FROM ? n * 1000 : n);
    if (!Number.isFinite(ms) || !inRange(ms)) return timeProblem('event.timestamp', String(ts).slice(0, 40));
    return ms;
  }
  if (datetime) {
    const d = Date.parse(datetime);
    if (Number.isNaN(d)) return 'event.datetime is not an ISO 8601 time';
    if (!inRange(d)) return timeProblem('event.datetime', datetime.slice(0, 40));
    return d;
  }
  return receivedAt;
}

function clip(v: unknown): unknown {
  if (typeof v === 'string') return v.length > HTTP_V2_MAX_STRING ? v.slice(0, HTTP_V2_MAX_STRING) : v;
  return v;
}

function text(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * Push titles are localized objects (`{"en": "…"}`); inside a quoted Liquid string they may also
 * arrive as a rendered hash (`{"en"=>"…"}`). English first, else the first language.
 */
function titleOf(v: unknown): string | undefined {
  if (isPlainObject(v)) return text(v.en) ?? text(Object.values(v)[0]);
  const s = text(v);
  if (s?.startsWith('{')) {
    try {
      const o = JSON.parse(s) as unknown;
      if (isPlainObject(o)) return titleOf(o);
    } catch {
      const en = /"en"\s*=>\s*"((?:[^"\\]|\\.)*)"/.exec(s) ?? /"[^"]*"\s*=>\s*"((?:[^"\\]|\\.)*)"/.exec(s);
      if (en) return en[1];
    }
  }
  return s;
}

/** `"tags": {{ user.tags }}` renders an object; a quoted rendering arrives as a JSON string. */
function tagsOf(v: unknown): Record<string, unknown> | undefined {
  if (isPlainObject(v)) return v;
  if (typeof v === 'string' && v.trim().startsWith('{')) {
    try {
      const o = JSON.parse(v) as unknown;
      if (isPlainObject(o)) return o;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * OneSignal tag values are text (a number when Liquid leaves it unquoted); an object or array
 * cannot come from `{{ user.tags }}`, so the event is refused naming the tag.
 */
function tagValueProblem(tags: Record<string, unknown>): string | undefined {
  for (const [k, v] of Object.entries(tags)) {
    if (typeof v === 'object' && v !== null) return `user.tags.${k.slice(0, 64)} must be text, not an object or array`;
  }
  return undefined;
}

function cleanId(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const t = v.trim();
  return INVALID_IDS.has(t.toLowerCase()) ? undefined : t.slice(0, HTTP_V2_MAX_STRING);
}

/** Validates and maps one element of a webhook body. Never throws. */
export function mapOneSignalEvent(raw: unknown, opts: MapOptions): MappedEvent {
  if (!isPlainObject(raw)) return { ok: false, problem: 'not a JSON object' };
  const parsed = eventSchema.safeParse(unflatten(raw));
  if (!parsed.success) return { ok: false, problem: describeIssues(parsed.error) };
  const p: ParsedEvent = parsed.data;
  const ev = p.event;
  const time = toMillis(ev.timestamp, ev.datetime, opts.receivedAt);
  if (typeof time === 'string') return { ok: false, problem: time };
  const tags = tagsOf(p.user?.tags);
  const tagProblem = tags && tagValueProblem(tags);
  if (tagProblem) return { ok: false, problem: tagProblem };

  const userId = cleanId(ev.external_id ?? p.user?.external_id);
  const deviceId = cleanId(ev.subscription_id ?? text(p.user?.subscription?.id));
  const props = eventProperties(p, deviceId);
  if (tags && opts.cohortIdsFromTags) props.amplitude_cohort_ids = opts.cohortIdsFromTags(tags);
  const amplitude: AmplitudeEvent = {
    event_type: eventTypeFor(ev.kind, opts.eventNames),
    ...(userId ? { user_id: userId } : {}),
    ...(deviceId ? { device_id: deviceId } : {}),
    time,
    // Deterministic from OneSignal's per-event UUID: any resend (crash, retry, replay) carries the
    // same insert_id and device_id, which is what Amplitude dedupes on for 7 days.
    insert_id: insertIdFor(ev.id),
    event_properties: props,
  };
  const deadReason =
    userId || deviceId ? undefined : 'no external_id or subscription_id: Amplitude needs a user_id or device_id';
  return { ok: true, eventId: ev.id, kind: ev.kind, amplitude, ...(deadReason ? { deadReason } : {}) };
}

/** Fields of `event.data` copied as event properties when present. */
const DATA_PROPERTIES = [
  'failure_reason',
  'page_name',
  'page_id',
  'target_name',
  'target_id',
  'live_activity_id',
  'live_activity_type',
] as const;

/** The Amplitude event properties of one OneSignal event; empty values are left out. */
function eventProperties(p: ParsedEvent, deviceId: string | undefined): Record<string, unknown> {
  const { event: ev, user } = p;
  const msg = p.message ?? {};
  const channel = channelOf(ev.kind);
  const data = ev.data ?? {};
  const props: Record<string, unknown> = {
    source: 'onesignal',
    onesignal_event_kind: ev.kind,
    onesignal_event_id: ev.id,
  };
  const put = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== '') props[k] = clip(v);
  };
  put('message_id', text(msg.id));
  put('message_name', text(msg.name));
  put('message_title', titleOf(msg.title));
  put('message_contents', titleOf(msg.contents));
  put('template_id', text(msg.template_id));
  put('channel', channel);
  put('message_type', channel ? (MESSAGE_TYPES.get(channel) ?? channel) : undefined);
  put('device_type', ev.subscription_device_type);
  put('subscription_id', deviceId);
  put('onesignal_id', ev.onesignal_id ?? user?.onesignal_id);
  put('language', user?.language ?? text(user?.subscription?.language));
  put('app_id', ev.app_id);
  put('url', text(msg.url) ?? text(msg.web_url) ?? text(msg.app_url));
  for (const k of DATA_PROPERTIES) put(k, text(data[k]));
  return props;
}

export function insertIdFor(oneSignalEventId: string): string {
  return `os-${oneSignalEventId}`;
}
