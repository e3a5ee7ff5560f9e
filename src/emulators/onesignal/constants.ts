/**
 * OneSignal vendor facts the emulator encodes. Sources are cited per block; the full notes are in
 * /work/shared/reference/onesignal-api.md. Where OneSignal documents nothing ([U]), the emulator
 * takes the strictest plausible reading so a client that passes here also passes against the real API.
 */

// https://documentation.onesignal.com/reference/rate-limits
// "Create / update / delete users or subscriptions": 1,000 req/s per app, 1 req/s per user,
// at most 100 property updates per request. View endpoints (users): 1 req/s per app.
export const DEFAULT_APP_RATE_LIMIT_PER_SECOND = 1000;
export const DEFAULT_PER_USER_PER_SECOND = 1;
export const DEFAULT_VIEW_RATE_LIMIT_PER_SECOND = 1;
export const MAX_PROPERTY_UPDATES_PER_REQUEST = 100;
/** Every limit above is a rolling window of this length. */
export const RATE_WINDOW_MS = 1000;

// https://documentation.onesignal.com/docs/en/add-user-data-tags — "Depends on your plan"; the
// docs' example plan allows 20.
export const DEFAULT_MAX_TAGS_PER_USER = 20;
/** Same page: keys OneSignal reserves. What it answers when one is used is [U]; we reject with 400. */
export const RESTRICTED_TAG_KEYS: ReadonlySet<string> = new Set([
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
]);

// https://documentation.onesignal.com/reference/create-user — at most 20 subscriptions per user.
export const MAX_SUBSCRIPTIONS_PER_USER = 20;

// https://documentation.onesignal.com/reference/create-segments and /reference/view-segments
export const SEGMENT_NAME_MAX = 128;
export const SEGMENT_FILTERS_MIN = 1;
export const SEGMENT_FILTERS_MAX = 200;
export const SEGMENTS_PAGE_LIMIT_MAX = 300;
export const SEGMENT_FIELDS: ReadonlySet<string> = new Set([
  'tag',
  'last_session',
  'first_session',
  'session_count',
  'session_time',
  'language',
  'app_version',
  'location',
  'country',
]);
/**
 * Documented tag relations. The Node SDK enum also lists in_array / not_in_array, which the docs
 * do not: conservative reading, the emulator rejects them so nothing comes to depend on them.
 */
export const TAG_RELATIONS: ReadonlySet<string> = new Set([
  '=',
  '!=',
  '>',
  '<',
  'exists',
  'not_exists',
  'time_elapsed_gt',
  'time_elapsed_lt',
]);
export const VALUELESS_RELATIONS: ReadonlySet<string> = new Set(['exists', 'not_exists']);
export const COMPARISON_RELATIONS: ReadonlySet<string> = new Set(['=', '!=', '>', '<']);

// ---- response bodies ----

// https://documentation.onesignal.com/reference/update-user (401 in the OpenAPI spec)
export const BODY_AUTH_MISSING = {
  errors: [{ code: 'auth-1', title: "This operation requires 'Authorization' in the HTTP header" }],
};

/**
 * Wrong (not missing) key: the status is [U]. Observed bodies: this legacy text
 * (OneSignal/OneSignal-Android-SDK#2221) and a 403 with an empty body (onesignal-node-api#125).
 * Conservative reading: 403 with the legacy text, so clients must treat 403 as bad credentials.
 */
export const BODY_ACCESS_DENIED = {
  errors: [
    "Access denied.  Please include an 'Authorization: ...' header with a valid API key (https://documentation.onesignal.com/docs/accounts-and-keys).",
  ],
};

// https://documentation.onesignal.com/reference/delete-segments (example 400). OneSignal gives the
// same answer for an unknown app id and for a body sent without Content-Type: application/json.
export const BODY_APP_NOT_FOUND = {
  errors: ['app_id not found. You may be missing a Content-Type: application/json header.'],
  reference: ['https://documentation.onesignal.com/docs/accounts-and-keys#section-keys-ids'],
};

// https://documentation.onesignal.com/reference/rate-limits plus the User Model spec's "limit" field.
export const BODY_RATE_LIMITED = { errors: ['API rate limit exceeded'], limit: 'App ID' };

/**
 * Unknown user on PATCH/DELETE: the 404 itself is [S] (View-user spec, Android SDK); the body is
 * [U]. We answer in the User Model envelope, which clients already parse for 400s.
 */
export const BODY_USER_NOT_FOUND = { errors: [{ code: 'user-not-found', title: 'User not found' }] };

// Legacy 400 texts (OneSignal/OneSignal-Android-SDK#863, OneSignal-iOS-SDK#437, OneSignal-Flutter-SDK#677).
export const MSG_TOO_MANY_TAG_UPDATES = 'Please limit your tag updates to 100 per request';
export const msgTagBudget = (max: number): string => `App is limited to a maximum of ${max} tags on a given player`;

// https://documentation.onesignal.com/reference/update-segment ("Segment name is already taken.")
export const MSG_SEGMENT_NAME_TAKEN = 'Segment name is already taken.';

/** Default app when the CLI is given none: fixed, so a developer can paste it into configs. */
export const DEFAULT_APP = { appId: '00000000-0000-4000-8000-00000000a001', apiKey: 'os_emulator_app_key' };
