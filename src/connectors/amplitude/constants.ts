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
// Experiment SDKs poll request-status every 2 s (Python) / 5 s (JVM) and tolerate 3 errors;
// a 429 while polling does not count as an error.
// Source: amplitude/experiment-python-server src/amplitude_experiment/cohort/cohort_download_api.py
export const COHORT_POLL_INTERVAL_MS = 2_000;
export const COHORT_POLL_MAX_ERRORS = 3;
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
