import { AmpError } from '../../errors';
import { type HttpResponse, parseRetryAfter } from '../http';
import { DEFAULT_RETRY_AFTER_MS } from './constants';

/** Which call produced the answer: a 404 means "user not found" only on user updates. */
export type OneSignalOperation =
  | 'update_user'
  | 'view_user'
  | 'test_connection'
  | 'create_segment'
  | 'list_segments'
  | 'delete_segment';

/**
 * The vendor's own error text from any of OneSignal's envelopes (reference §10.1):
 * `{"errors":["..."]}`, `{"errors":[{"code","title","meta"}]}`, `{"success":false,"errors":[...]}`,
 * `{"errors":[...],"reference":[...]}`, a bare string, or an empty body.
 */
export function vendorErrorText(text: string): string | undefined {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(trimmed);
  } catch {
    // Non-JSON (an HTML error page from a proxy, plain text): keep it short and on one line.
    return oneLine(trimmed).slice(0, 300);
  }
  if (typeof body === 'string') return oneLine(body);
  if (!body || typeof body !== 'object') return undefined;
  const o = body as Record<string, unknown>;
  const parts: string[] = [];
  const errs = o.errors;
  const list = Array.isArray(errs) ? errs : errs !== undefined && errs !== null ? [errs] : [];
  for (const e of list) {
    if (typeof e === 'string') parts.push(e);
    else if (e && typeof e === 'object') {
      const eo = e as Record<string, unknown>;
      const title = typeof eo.title === 'string' ? eo.title : typeof eo.message === 'string' ? eo.message : undefined;
      const code = typeof eo.code === 'string' ? eo.code : undefined;
      if (title && code) parts.push(`${title} (${code})`);
      else if (title ?? code) parts.push((title ?? code) as string);
      else parts.push(JSON.stringify(e));
    }
  }
  if (!parts.length && typeof o.error === 'string') parts.push(o.error);
  if (!parts.length && typeof o.message === 'string') parts.push(o.message);
  return parts.length ? oneLine(parts.join('; ')) : undefined;
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

function isSuccessFalse(text: string): boolean {
  // Most 2xx bodies (every tag update's) cannot say success=false: skip parsing them.
  if (!text.includes('"success"')) return false;
  try {
    const b = JSON.parse(text) as unknown;
    return !!b && typeof b === 'object' && (b as { success?: unknown }).success === false;
  } catch {
    return false;
  }
}

/**
 * THE place where a OneSignal answer becomes a catalogue error; `null` means success.
 * Transport failures already arrive as AmpError network/timeout from httpRequest (retryable).
 */
export function classifyResponse(res: HttpResponse, op: OneSignalOperation, now = Date.now()): AmpError | null {
  const { status } = res;
  // Segments answer {"success":false,...} on some failures; never count that as success.
  if (status >= 200 && status < 300 && !isSuccessFalse(res.text)) return null;
  const vendor = vendorErrorText(res.text);
  const said = (fallback: string) => vendor ?? fallback;
  const details = { vendor_status: status, ...(vendor ? { vendor_message: vendor } : {}) };

  if (status >= 200 && status < 300) {
    return new AmpError('vendor_rejected', `OneSignal refused the request: ${said('success=false')}`, {
      status,
      details,
    });
  }
  if (status === 429) {
    // [S] Unparseable or missing Retry-After: wait 60 s like the Android SDK (the conservative reading).
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now) ?? DEFAULT_RETRY_AFTER_MS;
    return new AmpError('rate_limited', `OneSignal rate limit: ${said('429 Too Many Requests')}`, {
      status,
      retryAfterMs,
      details,
    });
  }
  if (status === 408 || status >= 500) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after'], now);
    return new AmpError('vendor_unavailable', `OneSignal answered ${status}: ${said('no error text')}`, {
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      details,
    });
  }
  if (status === 401 || status === 403) {
    // [U] A wrong (not missing) key's status is undocumented: 401 and 403 are both treated as bad credentials.
    return new AmpError(
      'vendor_auth',
      `OneSignal rejected the credentials (${status}): ${said('invalid app id or API key')}`,
      {
        status,
        details,
      },
    );
  }
  if (status === 400 && vendor && /app_id not found/i.test(vendor)) {
    // A bad app id arrives as 400 "app_id not found…" (reference §5.4): the destination is unusable.
    return new AmpError('vendor_auth', `OneSignal does not know this app id: ${vendor}`, { status, details });
  }
  if (status === 404 && op === 'update_user') {
    // [S] Unknown external_id → 404 (Android SDK treats 404/410 as MISSING); the body is undocumented.
    return new AmpError('vendor_not_found', `user not found in OneSignal${vendor ? `: ${vendor}` : ''}`, {
      status,
      details,
    });
  }
  if (status === 410 && op === 'update_user') {
    return new AmpError('vendor_not_found', `user no longer exists in OneSignal${vendor ? `: ${vendor}` : ''}`, {
      status,
      details,
    });
  }
  return new AmpError('vendor_rejected', `OneSignal rejected the request (${status}): ${said('no error text')}`, {
    status,
    details,
  });
}
