/**
 * OneSignal vendor facts, each with its source. Everything the connector knows about
 * OneSignal's API that is not code lives here.
 */

// Current ("rich key") API host; the legacy https://onesignal.com/api/v1 is not used.
// Source: https://documentation.onesignal.com/reference/rest-api-overview
export const ONESIGNAL_API_URL = 'https://api.onesignal.com';

// App-key auth header: `Authorization: Key <app api key>`.
// Source: https://documentation.onesignal.com/docs/en/keys-and-ids
export const AUTH_SCHEME = 'Key';

// Update user by alias. Source: https://documentation.onesignal.com/reference/update-user
export const userByExternalIdPath = (appId: string, externalId: string): string =>
  `/apps/${encodeURIComponent(appId)}/users/by/external_id/${encodeURIComponent(externalId)}`;

// Segments (create, view, delete). Sources: https://documentation.onesignal.com/reference/create-segments,
// https://documentation.onesignal.com/reference/view-segments, https://documentation.onesignal.com/reference/delete-segments
export const segmentsPath = (appId: string): string => `/apps/${encodeURIComponent(appId)}/segments`;
export const segmentPath = (appId: string, segmentId: string): string =>
  `${segmentsPath(appId)}/${encodeURIComponent(segmentId)}`;

// "Create / update / delete users or subscriptions: 1,000 req/s/app; 1 req/s per user or
// subscription; <= 100 property updates/request". Source: https://documentation.onesignal.com/reference/rate-limits
export const USER_UPDATES_PER_SECOND_PER_APP = 1000;
export const USER_UPDATES_PER_SECOND_PER_USER = 1;
export const MAX_PROPERTY_UPDATES_PER_REQUEST = 100;

// [S] Android SDK falls back to 60 s when Retry-After cannot be parsed; we do the same
// (conservative). Source: OneSignal/OneSignal-Android-SDK v5.9.9 NetworkUtils / HttpClient.
export const DEFAULT_RETRY_AFTER_MS = 60_000;

// Retry guidance: "give up after 10–15 min". A 429 is retried inside the client up to this.
// Source: https://documentation.onesignal.com/reference/rate-limits
export const RATE_LIMIT_RETRY_DEADLINE_MS = 10 * 60_000;

// Default API response timeout is 100 s; a request that timed out may still be processing.
// Source: https://documentation.onesignal.com/reference/rest-api-overview (timeouts)
export const REQUEST_TIMEOUT_MS = 100_000;

// Tags per user "depends on your plan" (the docs' example plan allows 20, iOS SDK issue #830
// shows 10). [U] per-plan numbers: we default to 10 (DESIGN §1), the most conservative seen.
// Source: https://documentation.onesignal.com/docs/en/add-user-data-tags
export const DEFAULT_MAX_TAGS_PER_USER = 10;

// Segment name <= 128 characters. Source: https://documentation.onesignal.com/reference/create-segments
export const MAX_SEGMENT_NAME_LENGTH = 128;

// View segments: limit defaults to 300, which is also the maximum.
// Source: https://documentation.onesignal.com/reference/view-segments
export const MAX_SEGMENTS_PAGE = 300;

// Our own tag scheme (the native integration's storage is undocumented, reference §9.3).
export const DEFAULT_TAG_KEY_TEMPLATE = 'amp_cohort_{cohort_id}';
export const TAG_KEY_PLACEHOLDER = '{cohort_id}';
export const DEFAULT_EXTERNAL_ID_PROPERTY = 'user_id';

// Restricted tag keys. Source: https://documentation.onesignal.com/docs/en/add-user-data-tags
export const RESTRICTED_TAG_KEYS: readonly string[] = [
  'message',
  'notification',
  'subscription',
  'user',
  'template',
  'app',
  'org',
  'dynamic_content',
  'data_feed',
  'journey',
  'custom_data',
];

// Tag values: "1" sets our cohort tag, "" deletes it (documented deletion value; null is
// undocumented). Source: https://documentation.onesignal.com/reference/edit-tags-with-external-user-id
export const TAG_PRESENT = '1';
export const TAG_DELETE = '';

// "View endpoints (messages, templates, users): 1 req/s per app". Reading users back is paced by
// its own limiter, apart from the 1,000 req/s of updates.
// Source: https://documentation.onesignal.com/reference/rate-limits; View user (200/400/401/404/429):
// https://documentation.onesignal.com/reference/view-user
export const USER_VIEWS_PER_SECOND_PER_APP = 1;
