/**
 * Amplitude vendor facts, each with its source. Shared by the cohort source (pull and push)
 * and the event forwarder (HTTP V2).
 */

export type AmplitudeRegion = 'us' | 'eu';

// Behavioral Cohorts API hosts. Source: https://amplitude.com/docs/apis/analytics/behavioral-cohorts
export const COHORTS_API_URL: Record<AmplitudeRegion, string> = {
  us: 'https://amplitude.com',
  eu: 'https://analytics.eu.amplitude.com',
};

// HTTP V2 hosts. Source: https://amplitude.com/docs/apis/analytics/http-v2
export const HTTP_API_URL: Record<AmplitudeRegion, string> = {
  us: 'https://api2.amplitude.com',
  eu: 'https://api.eu.amplitude.com',
};
export const HTTP_V2_PATH = '/2/httpapi';
export const BATCH_PATH = '/batch';

// Cohort download budget: 500 "Get one cohort" requests a month on Growth/Enterprise.
// Source: https://amplitude.com/docs/apis/analytics/behavioral-cohorts (limits table)
export const DEFAULT_MONTHLY_DOWNLOAD_BUDGET = 500;
// 5 concurrent requests per project across Amplitude's REST APIs; more get 429.
// Source: https://amplitude.com/docs/apis/analytics/dashboard-rest (concurrency)
export const COHORT_API_CONCURRENCY = 5;
// Experiment SDKs poll request-status every 2 s (Python) / 5 s (JVM) and tolerate 3 errors in
// all; we retry each poll like any other request instead (COHORT_REQUEST_MAX_TRIES), since 3
// errors in all fail a long job's download at a modest fault rate.
// Source: amplitude/experiment-python-server src/amplitude_experiment/cohort/cohort_download_api.py
export const COHORT_POLL_INTERVAL_MS = 2_000;
// The 302 from .../file points at a pre-signed S3 URL valid for one minute: follow it at once.
// Source: https://amplitude.com/docs/apis/analytics/behavioral-cohorts (download step 3)
export const COHORT_FILE_REDIRECT_TTL_MS = 60_000;

// Cadence → downloads per month, for the budget arithmetic shown when a sync is created.
// A month is taken as 30 days (hourly = 720, daily = 30; realtime reconciles once a day).
export const DOWNLOADS_PER_MONTH: Record<string, number> = {
  manual: 0,
  once: 1,
  hourly: 720,
  daily: 30,
  realtime: 30,
};

// HTTP V2 request limits: < 2000 events and < 1 MB per request, else 413.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (limits)
export const HTTP_V2_MAX_EVENTS = 2000;
export const HTTP_V2_MAX_BYTES = 1_000_000;
// A throttled user/device (over 30 events/s) should be paused for 30 s.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (429) and Amplitude-TypeScript
// packages/analytics-core/src/plugins/destination.ts (throttleTimeout = 30000)
export const HTTP_V2_THROTTLE_PAUSE_MS = 30_000;
export const HTTP_V2_EPS_PER_ID = 30;
// user_id/device_id shorter than 5 chars are dropped unless options.min_id_length says otherwise.
// Source: https://amplitude.com/docs/apis/analytics/http-v2 (ID length)
export const HTTP_V2_MIN_ID_LENGTH = 5;
// insert_id dedupe window. Source: https://amplitude.com/docs/apis/analytics/http-v2#event-deduplication
export const INSERT_ID_DEDUPE_WINDOW_MS = 7 * 24 * 3600 * 1000;
// Strings longer than 1024 characters are rejected/truncated.
export const HTTP_V2_MAX_STRING = 1024;

// ---- Cohort source (pull and push) ----

// Behavioral Cohorts API paths (list, 3-step download).
// Source: https://amplitude.com/docs/apis/analytics/behavioral-cohorts
export const COHORTS_LIST_PATH = '/api/3/cohorts';
export const COHORT_REQUEST_PATH = (cohortId: string): string =>
  `/api/5/cohorts/request/${encodeURIComponent(cohortId)}`;
export const COHORT_STATUS_PATH = (requestId: string): string =>
  `/api/5/cohorts/request-status/${encodeURIComponent(requestId)}`;
export const COHORT_FILE_PATH = (requestId: string): string =>
  `/api/5/cohorts/request/${encodeURIComponent(requestId)}/file`;
// Anonymous users carry only an amplitude_id; the file's user column is `user_id`.
// Source: Experiment SDKs (CohortDownloadApi.kt / cohort_download_api.py) and reference §2.4 [S]
export const COHORT_FILE_USER_COLUMN = 'user_id';
// "CSV returned from API has all strings prefixed with a tab character" (Experiment SDK comment) [S]
export const COHORT_FILE_VALUE_PREFIX = '\t';
// Calls per cohort-API request (list, download request, status poll, file) before a retryable
// failure (5xx, dropped connection, timeout, 429) is final. A 429 comes from the
// 5-concurrent-requests-per-project limit (dashboard-rest), so it clears fast.
export const COHORT_REQUEST_MAX_TRIES = 8;
// No failed state is documented for a download job [V: none documented]; give up after this long.
export const COHORT_DOWNLOAD_MAX_WAIT_MS = 30 * 60_000;
// [U] The maximum users per webhook batch is undocumented (partner syncs send up to 10,000 ids per
// call); 10 MB leaves room for 10,000 users with up to 50 selected properties each.
export const WEBHOOK_BODY_LIMIT_BYTES = 10 * 1024 * 1024;

// Events per HTTP V2 request we send: the docs say "< 2000 events" (and the current page "up to
// 2,000"); we take the strict reading, 1,999. Source: https://amplitude.com/docs/apis/analytics/http-v2 (limits)
export const HTTP_V2_BATCH_EVENTS = HTTP_V2_MAX_EVENTS - 1;
