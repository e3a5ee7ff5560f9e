import { HTTP_V2_BATCH_EVENTS, HTTP_V2_EPS_PER_ID, HTTP_V2_MAX_BYTES, HTTP_V2_THROTTLE_PAUSE_MS } from './constants';
import { bodyOverhead, type HttpV2Event, type HttpV2Outcome, sendHttpV2 } from './httpapi';

/**
 * The `sendEvents` action: events (already in HTTP V2 JSON) to one Amplitude project, with every
 * HTTP V2 rule here (reference amplitude-api.md §5): what makes a request (< 2,000 events,
 * < 1 MB, at most 30 events of one user or device), and what each answer means for each event.
 * The caller claims events, hands them to `plan`, sends each planned request with
 * `performBatch` and writes down the settlements; it knows nothing of Amplitude.
 */

/** Where and as whom events are sent: one Amplitude project's HTTP V2 endpoint. */
export interface SendEventsSettings {
  baseUrl: string;
  apiKey: string;
}

/** One event of a planned request; `index` is its position in what the caller passed to `plan`. */
export interface PlannedEvent {
  index: number;
  payload: string;
  ids: HttpV2Event;
  bytes: number;
}

/** What happened to one event; an event a stopped call never sent has no settlement. */
export type EventSettlement =
  | { status: 'delivered' }
  /** Amplitude refuses it for good (the reason says why): resending cannot help. */
  | { status: 'dead'; reason: string }
  /** Its user or device is throttled: send it again at `retryAt`, at no cost to its retries. */
  | { status: 'held'; reason: string; retryAt: number }
  /** Amplitude did not take it this time (5xx, network): send it again after a backoff. */
  | { status: 'retry'; reason: string };

export interface BatchResult {
  settled: Array<{ index: number; settlement: EventSettlement }>;
  requests: number;
  /** The project refuses the requests themselves (bad API key, WAF): send nothing more to it. */
  fatal?: string;
  /** Nothing more may be sent in this pass (aborted, or fatal): unsettled events go back unsent. */
  stopped: boolean;
}

// Every body stays strictly under 1 MB; a little margin for the JSON separators we add.
const MAX_BODY_BYTES = HTTP_V2_MAX_BYTES - 1_024;
const NO_IDS = 'Amplitude needs a user_id or device_id, and the event has neither';

/** The ids Amplitude throttles and dedupes by; an unreadable payload has none. */
function idsOf(payload: string): HttpV2Event {
  try {
    const p = JSON.parse(payload) as HttpV2Event;
    return { ...(p.user_id ? { user_id: p.user_id } : {}), ...(p.device_id ? { device_id: p.device_id } : {}) };
  } catch {
    return {};
  }
}

/**
 * Splits events into requests, keeping their order within each request. Payloads Amplitude would
 * refuse for lack of ids never go out (one such event fails the whole request): they are
 * `refused`, to be settled as dead letters with the reason.
 */
export function plan(
  settings: Pick<SendEventsSettings, 'apiKey'>,
  payloads: string[],
): { requests: PlannedEvent[][]; refused: Array<{ index: number; reason: string }> } {
  const sendable: PlannedEvent[] = [];
  const refused: Array<{ index: number; reason: string }> = [];
  payloads.forEach((payload, index) => {
    const ids = idsOf(payload);
    if (ids.user_id || ids.device_id) sendable.push({ index, payload, ids, bytes: Buffer.byteLength(payload) + 1 });
    else refused.push({ index, reason: NO_IDS });
  });
  return { requests: packRequests(sendable, bodyOverhead(settings.apiKey)), refused };
}

interface OpenRequest {
  events: PlannedEvent[];
  bytes: number;
  perId: Map<string, number>;
}

function throttleKeys(e: PlannedEvent): string[] {
  return [e.ids.user_id ? `u:${e.ids.user_id}` : '', e.ids.device_id ? `d:${e.ids.device_id}` : ''].filter(Boolean);
}

/**
 * Requests of ≤ 1,999 events and < 1 MB, with at most 30 events per user or device in one
 * request: Amplitude throttles an id above 30 events/s, so a larger share would get the whole
 * id's events 429'd. First fit keeps the rest of the order.
 */
function packRequests(events: PlannedEvent[], overhead: number): PlannedEvent[][] {
  const open: OpenRequest[] = [];
  let start = 0;
  for (const e of events) {
    const keys = throttleKeys(e);
    let target: OpenRequest | undefined;
    for (let i = start; i < open.length; i++) {
      const r = open[i]!;
      if (r.events.length >= HTTP_V2_BATCH_EVENTS) {
        if (i === start) start++;
        continue;
      }
      if (r.bytes + e.bytes > MAX_BODY_BYTES) continue;
      if (keys.some((k) => (r.perId.get(k) ?? 0) >= HTTP_V2_EPS_PER_ID)) continue;
      target = r;
      break;
    }
    if (!target) {
      target = { events: [], bytes: overhead, perId: new Map() };
      open.push(target);
    }
    target.events.push(e);
    target.bytes += e.bytes;
    for (const k of keys) target.perId.set(k, (target.perId.get(k) ?? 0) + 1);
  }
  return open.map((r) => r.events);
}

interface Sending {
  settings: SendEventsSettings;
  signal: AbortSignal | undefined;
  result: BatchResult;
}

/**
 * Sends one planned request and settles each of its events: a 400 naming events dead-letters
 * exactly those and resends the rest; a 413, or a 400 naming none, is bisected until the refused
 * event stands alone; a 429 holds the throttled ids, dead-letters the daily-quota ones and
 * resends the rest.
 */
export async function performBatch(
  settings: SendEventsSettings,
  events: PlannedEvent[],
  opts: { signal?: AbortSignal } = {},
): Promise<BatchResult> {
  const s: Sending = { settings, signal: opts.signal, result: { settled: [], requests: 0, stopped: false } };
  await send(s, events);
  return s.result;
}

async function send(s: Sending, events: PlannedEvent[]): Promise<void> {
  if (events.length === 0 || s.result.stopped) return;
  if (s.signal?.aborted) {
    s.result.stopped = true;
    return;
  }
  s.result.requests++;
  const outcome = await sendHttpV2(
    s.settings.baseUrl,
    s.settings.apiKey,
    events.map((e) => e.payload),
    events.map((e) => e.ids),
    s.signal ? { signal: s.signal } : {},
  );
  // Aborted mid-request: Amplitude may or may not have it; a later pass resends it under the
  // same insert_id.
  if (s.signal?.aborted && outcome.kind === 'retry') {
    s.result.stopped = true;
    return;
  }
  for (const next of settleAnswer(s.result, events, outcome)) await send(s, next);
}

/** Settles what the answer decides; returns the events to send again, in order. */
function settleAnswer(r: BatchResult, events: PlannedEvent[], outcome: HttpV2Outcome): PlannedEvent[][] {
  const settle = (list: PlannedEvent[], settlement: EventSettlement) => {
    for (const e of list) r.settled.push({ index: e.index, settlement });
  };
  const dead = (reason: string): EventSettlement => ({ status: 'dead', reason });
  switch (outcome.kind) {
    case 'ok':
      settle(events, { status: 'delivered' });
      return [];
    case 'invalid_events':
      events.forEach((e, i) => {
        const why = outcome.reasons.get(i);
        if (why !== undefined) settle([e], dead(`Amplitude 400: ${why}`));
      });
      return [events.filter((_, i) => !outcome.reasons.has(i))];
    case 'too_large':
    case 'invalid_batch': {
      // A single event still refused alone is a dead letter (as Amplitude's SDK drops it).
      if (events.length > 1) return bisect(events);
      const why =
        outcome.kind === 'too_large'
          ? 'Amplitude 413: payload too large even as a single event'
          : `Amplitude 400: ${outcome.error}`;
      settle(events, dead(why));
      return [];
    }
    case 'throttled': {
      settle(
        events.filter((_, i) => outcome.quota.has(i)),
        dead('Amplitude 429: user or device exceeded its daily event quota'),
      );
      const reason = `Amplitude 429: ${outcome.error}; held ${HTTP_V2_THROTTLE_PAUSE_MS / 1000} s`;
      settle(
        events.filter((_, i) => outcome.hold.has(i)),
        { status: 'held', reason, retryAt: Date.now() + HTTP_V2_THROTTLE_PAUSE_MS },
      );
      return [events.filter((_, i) => !outcome.hold.has(i) && !outcome.quota.has(i))];
    }
    case 'retry':
      settle(events, { status: 'retry', reason: `${outcome.error.message} (will retry)` });
      return [];
    case 'fatal':
      r.fatal = outcome.error;
      r.stopped = true;
      return [];
  }
}

function bisect(events: PlannedEvent[]): PlannedEvent[][] {
  const mid = Math.ceil(events.length / 2);
  return [events.slice(0, mid), events.slice(mid)];
}

export const sendEvents = {
  title: 'Send events',
  description: 'Message events to one Amplitude project through HTTP V2, exactly once by insert_id.',
  /** Events one pass of the caller should take at a time: one request's worth. */
  maxEvents: HTTP_V2_BATCH_EVENTS,
  plan,
  performBatch,
};
