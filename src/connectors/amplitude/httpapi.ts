import { AmpError, toAmpError } from '../../errors';
import { httpRequest } from '../http';
import { HTTP_V2_PATH } from './constants';

/**
 * Amplitude HTTP V2 (`POST /2/httpapi`) client: sends one batch of pre-serialized events and
 * classifies the answer the way Amplitude's own TypeScript SDK does (reference amplitude-api.md
 * §5.5–5.6): status from the JSON `code`, falling back to the HTTP status.
 */

export type HttpV2Outcome =
  | { kind: 'ok'; status: number }
  /** 400 naming events: drop exactly those (reason per index), resend the rest. */
  | { kind: 'invalid_events'; status: number; error: string; reasons: Map<number, string> }
  /** 400 about the request itself (Invalid API key, missing_field) or a WAF 403: stop the stream. */
  | { kind: 'fatal'; status: number; error: string }
  /** 400 that names no events (e.g. "Invalid event JSON"): the batch must be bisected. */
  | { kind: 'invalid_batch'; status: number; error: string }
  | { kind: 'too_large'; status: number }
  /** 429: hold these indexes for the throttle pause; drop the daily-quota ones. */
  | { kind: 'throttled'; status: number; error: string; hold: Set<number>; quota: Set<number> }
  | { kind: 'retry'; status: number | undefined; error: AmpError };

export interface HttpV2Event {
  user_id?: string;
  device_id?: string;
}

// Events with ids shorter than this are kept (the default, 5, would drop short external ids).
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (options.min_id_length)
export const MIN_ID_LENGTH_OPTION = 1;

export function buildBody(apiKey: string, serializedEvents: string[]): string {
  return `{"api_key":${JSON.stringify(apiKey)},"events":[${serializedEvents.join(',')}],"options":{"min_id_length":${MIN_ID_LENGTH_OPTION}}}`;
}

/** Bytes the body takes beyond the events themselves (key, wrapper, options). */
export function bodyOverhead(apiKey: string): number {
  return Buffer.byteLength(buildBody(apiKey, []));
}

type Body = Record<string, unknown>;

function indexList(v: unknown): number[] {
  return Array.isArray(v) ? v.filter((n): n is number => Number.isInteger(n)) : [];
}

function fieldIndexes(v: unknown): Array<[string, number[]]> {
  if (typeof v !== 'object' || v === null) return [];
  return Object.entries(v as Record<string, unknown>).map(([field, idx]) => [field, indexList(idx)]);
}

function keysOf(v: unknown): Set<string> {
  if (Array.isArray(v)) return new Set(v.map(String));
  if (typeof v === 'object' && v !== null) return new Set(Object.keys(v));
  return new Set();
}

export function classify(status: number, text: string, events: HttpV2Event[]): HttpV2Outcome {
  let body: Body = {};
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed === 'object' && parsed !== null) body = parsed as Body;
  } catch {
    /* non-JSON answers are classified by HTTP status alone */
  }
  const code = typeof body.code === 'number' ? body.code : status;
  const error = typeof body.error === 'string' ? body.error : text.slice(0, 200) || `HTTP ${status}`;
  if (code >= 200 && code < 300) return { kind: 'ok', status: code };
  if (code === 413) return { kind: 'too_large', status: code };
  if (code === 429) {
    const hold = new Set(indexList(body.throttled_events));
    const users = keysOf(body.throttled_users);
    const devices = keysOf(body.throttled_devices);
    const quotaUsers = keysOf(body.exceeded_daily_quota_users);
    const quotaDevices = keysOf(body.exceeded_daily_quota_devices);
    const quota = new Set<number>();
    events.forEach((e, i) => {
      if ((e.user_id && quotaUsers.has(e.user_id)) || (e.device_id && quotaDevices.has(e.device_id))) quota.add(i);
      else if ((e.user_id && users.has(e.user_id)) || (e.device_id && devices.has(e.device_id))) hold.add(i);
    });
    for (const i of quota) hold.delete(i);
    // A 429 that names nobody: conservatively hold the whole batch for the throttle pause.
    if (hold.size === 0 && quota.size === 0) for (let i = 0; i < events.length; i++) hold.add(i);
    return { kind: 'throttled', status: code, error, hold, quota };
  }
  if (code === 408 || code >= 500 || status >= 500) {
    return {
      kind: 'retry',
      status: code,
      error: new AmpError('vendor_unavailable', `Amplitude answered ${code}: ${error}`, { status: code }),
    };
  }
  if (code === 400) {
    if (
      error.startsWith('Invalid API key') ||
      typeof body.missing_field === 'string' ||
      error === 'Invalid request path'
    ) {
      const field = typeof body.missing_field === 'string' ? ` (missing_field: ${body.missing_field})` : '';
      return { kind: 'fatal', status: code, error: `Amplitude answered 400: ${error}${field}` };
    }
    const reasons = new Map<number, string>();
    const note = (i: number, reason: string) => {
      if (i >= 0 && i < events.length && !reasons.has(i)) reasons.set(i, reason);
    };
    for (const [field, idx] of fieldIndexes(body.events_with_invalid_fields))
      for (const i of idx) note(i, `invalid field ${field}: ${error}`);
    for (const [field, idx] of fieldIndexes(body.events_with_missing_fields))
      for (const i of idx) note(i, `missing field ${field}: ${error}`);
    for (const [field, idx] of fieldIndexes(body.events_with_invalid_id_lengths))
      for (const i of idx) note(i, `invalid id length ${field}: ${error}`);
    for (const i of indexList(body.silenced_events))
      note(i, `silenced device (over ${body.eps_threshold ?? '?'} events/s for too long): ${error}`);
    if (reasons.size > 0) return { kind: 'invalid_events', status: code, error, reasons };
    return { kind: 'invalid_batch', status: code, error };
  }
  // 403 (WAF), 401, 404…: the request itself is refused, so retrying the same bytes cannot help.
  return { kind: 'fatal', status: code, error: `Amplitude answered ${code}: ${error}` };
}

export async function sendHttpV2(
  baseUrl: string,
  apiKey: string,
  serializedEvents: string[],
  events: HttpV2Event[],
  opts: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<HttpV2Outcome> {
  try {
    const res = await httpRequest(baseUrl.replace(/\/+$/, '') + HTTP_V2_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: '*/*' },
      body: buildBody(apiKey, serializedEvents),
      // Amplitude's Node SDK gives up after 10 s; a little more, since our batches are larger.
      timeoutMs: opts.timeoutMs ?? 20_000,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return classify(res.status, res.text, events);
  } catch (e) {
    return { kind: 'retry', status: undefined, error: toAmpError(e) };
  }
}

export type KeyCheck = 'accepted' | 'refused' | 'unreachable';

/**
 * Checks an HTTP V2 API key without sending an event: a request with no events. Amplitude
 * checks the key before the events (its "Invalid API key" answer names no event), so a good
 * key gets 400 missing_field events and a bad one "Invalid API key". [U] The order of the two
 * checks is not documented; the emulator follows this reading.
 */
export async function checkHttpV2Key(baseUrl: string, apiKey: string): Promise<{ result: KeyCheck; error?: string }> {
  try {
    const res = await httpRequest(baseUrl.replace(/\/+$/, '') + HTTP_V2_PATH, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: '*/*' },
      body: JSON.stringify({ api_key: apiKey, events: [] }),
      timeoutMs: 10_000,
    });
    const outcome = classify(res.status, res.text, []);
    if (outcome.kind === 'ok' || (outcome.kind === 'fatal' && /missing_field: events/.test(outcome.error)))
      return { result: 'accepted' };
    if (outcome.kind === 'fatal' && /Invalid API key/.test(outcome.error))
      return { result: 'refused', error: outcome.error };
    return { result: 'unreachable', error: outcome.kind === 'retry' ? outcome.error.message : `HTTP ${res.status}` };
  } catch (e) {
    return { result: 'unreachable', error: toAmpError(e).message };
  }
}
