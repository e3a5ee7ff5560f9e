/**
 * Vendor facts the Amplitude emulator encodes, each with its source; [U] marks the readings the
 * docs leave open, where the emulator takes the most conservative one. The emulator keeps its own
 * copy of the limits the client also knows (src/connectors/amplitude/constants.ts): a fake that
 * read the client's constants would agree with a client whose figure is wrong.
 */

// Source: https://amplitude.com/docs/apis/analytics/http-v2 and /batch-event-upload (endpoints)
export const HTTP_V2_PATH = '/2/httpapi';
export const BATCH_PATH = '/batch';
// 5 concurrent requests per project across Amplitude's REST APIs; more get 429.
// Source: https://amplitude.com/docs/apis/analytics/dashboard-rest (concurrency)
export const COHORT_API_CONCURRENCY = 5;
// The 302 from .../file points at a pre-signed S3 URL valid for one minute.
// Source: https://amplitude.com/docs/apis/analytics/behavioral-cohorts (download step 3)
export const COHORT_FILE_REDIRECT_TTL_MS = 60_000;
// HTTP V2 request limits: < 2000 events and < 1 MB per request, else 413.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (limits)
export const HTTP_V2_MAX_EVENTS = 2000;
export const HTTP_V2_MAX_BYTES = 1_000_000;
// A user or device over 30 events/s is throttled (429). Source: https://amplitude.com/docs/apis/analytics/http-v2 (429)
export const HTTP_V2_EPS_PER_ID = 30;
// user_id/device_id shorter than 5 chars are dropped unless options.min_id_length says otherwise.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (ID length)
export const HTTP_V2_MIN_ID_LENGTH = 5;
// insert_id dedupe window. Source: https://amplitude.com/docs/apis/analytics/http-v2#event-deduplication
export const INSERT_ID_DEDUPE_WINDOW_MS = 7 * 24 * 3600 * 1000;
// Strings longer than 1024 characters are rejected/truncated. Source: https://amplitude.com/docs/apis/analytics/http-v2
export const HTTP_V2_MAX_STRING = 1024;

// Batch Event Upload accepts up to 20 MB per request (HTTP V2: < 1 MB).
// Source: https://amplitude.com/docs/apis/analytics/batch-event-upload (limits)
export const BATCH_MAX_BYTES = 20 * 1024 * 1024;

// IDs HTTP V2 rejects with 400. Source: https://amplitude.com/docs/apis/analytics/http-v2 (invalid IDs).
// Compared case-insensitively: the docs list lower-case spellings only [U], and rejecting "NULL"
// too is the conservative reading.
export const BLOCKED_IDS: ReadonlySet<string> = new Set([
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
// event_properties / user_properties may nest at most 40 levels.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (optional fields)
export const HTTP_V2_MAX_PROPERTY_DEPTH = 40;

// HTTP V2 error texts; the TypeScript SDK fails a whole batch when `error` starts with
// "Invalid API key" or `missing_field` is set. Source: https://amplitude.com/docs/apis/analytics/http-v2
// (400 error values) and Amplitude-TypeScript packages/analytics-core/src/plugins/destination.ts.
export const HTTP_V2_ERRORS = {
  missingBody: 'Missing request body',
  invalidJson: 'Invalid JSON request body',
  missingField: 'Request missing required field',
  invalidEventJson: 'Invalid event JSON',
  invalidApiKey: 'Invalid API key',
  invalidFields: 'Invalid field values on some events',
  tooLarge: 'Payload too large',
  throttled: 'Too many requests for some devices and users',
} as const;

// Cohort webhook destination: preset headers, up to 5 custom headers, a 1-2 s answer budget.
// Source: https://amplitude.com/docs/data/destination-catalog/cohort-webhooks
export const WEBHOOK_USER_AGENT = 'Amplitude/Webhook/1.0';
export const WEBHOOK_MAX_CUSTOM_HEADERS = 5;
export const WEBHOOK_TIMEOUT_MS = 2_000;
// [U] The cohort-webhook retry schedule is undocumented; partner cohort syncs retry 8 times,
// backing off exponentially from 1 s. Source: https://amplitude.com/docs/partners/receiving-behavioral-cohorts
export const WEBHOOK_RETRIES = 8;
export const WEBHOOK_BASE_DELAY_MS = 1_000;
// Default batch of 1,000 users, 4 requests in parallel. Source: receiving-behavioral-cohorts (batching).
export const WEBHOOK_BATCH_SIZE = 1_000;
export const WEBHOOK_CONCURRENCY = 4;

// Larger cohort files answer 302 to a pre-signed S3 URL. [U] The size at which Amplitude switches
// from an inline body to the redirect is undocumented; 1,000 members makes clients meet both forms.
export const COHORT_REDIRECT_ABOVE = 1_000;
