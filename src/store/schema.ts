import type { Generated } from 'kysely';

/**
 * Table types for Kysely. Conventions shared by both dialects:
 * booleans are integers 0/1, times are epoch milliseconds (bigint), JSON is text.
 */
export interface SourcesTable {
  id: string;
  name: string;
  kind: string; // 'amplitude'
  region: string; // 'us' | 'eu'
  api_url: string | null;
  api_key_enc: string;
  secret_key_enc: string;
  webhook_secret_enc: string;
  download_budget: number;
  created_at: number;
}

export interface DestinationsTable {
  id: string;
  name: string;
  kind: string; // 'onesignal'
  source_id: string | null;
  app_id: string;
  api_key_enc: string;
  api_url: string;
  tag_key_template: string;
  external_id_property: string;
  max_tags_per_user: number;
  rate_limit_per_second: number;
  status: string; // 'active' | 'paused'
  status_reason: string | null;
  created_at: number;
}

export interface CohortsTable {
  id: string;
  source_id: string | null;
  name: string;
  origin: string; // 'file' | 'amplitude' | 'webhook'
  size: number | null;
  last_computed: number | null;
  created_at: number;
  updated_at: number;
  /** Blank/anonymous rows in the last file import (migration 002). */
  blank_ids: Generated<number>;
}

/** The latest known membership snapshot of a file-imported cohort. */
export interface CohortMembersTable {
  cohort_id: string;
  external_id: string;
}

export interface SyncsTable {
  id: string;
  cohort_id: string;
  destination_id: string;
  cadence: string; // 'manual' | 'once' | 'hourly' | 'daily' | 'realtime'
  tag_key: string;
  external_id_property: string;
  segment_id: string | null;
  segment_error: string | null;
  guard_threshold: number;
  status: string; // 'active' | 'deleting'
  next_run_at: number | null;
  last_run_id: string | null;
  created_at: number;
  /** Share (0..1) of sampled users whose OneSignal tags matched the ledger at the last read-back (`sync verify`); null until verified (migration 009). */
  verify_match_rate: Generated<number | null>;
  verified_at: Generated<number | null>;
  /** 'presence' (the tag is "1") or 'entered_at' (the Unix time the user entered the cohort); migration 013. */
  tag_value: Generated<string>;
}

/** One row per (sync, external id): the membership ledger (DESIGN §2). */
export interface LedgerTable {
  sync_id: string;
  destination_id: string;
  external_id: string;
  desired: number;
  confirmed: number;
  /** Source timestamp (ms) of the membership fact behind `desired`; older deltas are ignored. */
  source_ts: number;
  /** The run that last changed `desired`; its counters are computed from these rows. */
  run_id: string | null;
  /** null while nothing has been tried since `desired` changed; else 'delivered' | 'retry' | 'not_found' | 'failed'. */
  outcome: string | null;
  error: string | null;
  attempts: number;
  next_attempt_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
  updated_at: number;
  /** When the user last became a member (epoch ms, the membership's source time); migration 013. */
  entered_at: Generated<number | null>;
}

/** Per-run snapshot rows, loaded from a file or a download, diffed in SQL against the ledger. */
export interface StagingTable {
  run_id: string;
  external_id: string;
}

export interface RunsTable {
  id: string;
  sync_id: string;
  status: string; // 'running' | 'completed' | 'failed' | 'held' | 'rejected' | 'dry_run'
  trigger: string; // 'manual' | 'schedule' | 'webhook' | 'once'
  dry_run: number;
  members: number;
  added: number;
  removed: number;
  unchanged: number;
  skipped_anonymous: number;
  delivered: number;
  not_found: number;
  failed: number;
  pending: number;
  requests: number;
  error: string | null;
  hold_reason: string | null;
  /** JSON: samples of adds/removes/skips for dry runs and held runs. */
  sample: string | null;
  started_at: number;
  finished_at: number | null;
  /** Set when the run's diff was written to the ledger (migration 002). */
  applied_at: number | null;
  /** The process working the run, and until when (renewed while it lives; migration 008). */
  lease_owner: string | null;
  lease_until: number | null;
  /** Earlier not_found/failed users tried again; apart from added and removed (migration 010). */
  retried: Generated<number>;
}

/** The integer standing for a run in run_records (migration 010). */
export interface RunKeysTable {
  key: Generated<number>;
  run_id: string;
}

/** Each distinct vendor message of a record, once (migration 010). */
export interface RecordMessagesTable {
  id: Generated<number>;
  text: string;
}

/**
 * One immutable row per settled record of a run (migration 010, src/sync/records.ts).
 * `code` = outcome × 2 + operation (0 add, 1 remove); `at` in epoch seconds.
 */
export interface RunRecordsTable {
  run_key: number;
  external_id: string;
  seq: number;
  code: number;
  status: number | null;
  attempts: number;
  at: number;
  message_id: number | null;
}

/** Amplitude cohort-webhook messages, stored before they are acknowledged. */
export interface WebhookInboxTable {
  id: Generated<number>;
  source_id: string;
  message_id: string;
  cohort_id: string;
  cohort_name: string | null;
  in_cohort: number;
  computed_time: number;
  /** The message as received (a JSON object with `users`); rows from before migration 004: the users array. '' when body_deflated holds it. */
  body: string;
  /** The message as received, raw-deflated (migration 007); NULL when `body` holds it. */
  body_deflated: Buffer | null;
  received_at: number;
  applied_at: number | null;
  error: string | null;
}

/** Every cohort download requested from Amplitude, counted against the monthly budget. */
export interface DownloadsTable {
  id: Generated<number>;
  source_id: string;
  cohort_id: string;
  run_id: string | null;
  month: string; // 'YYYY-MM' (UTC)
  status: string; // 'requested' | 'completed' | 'failed'
  requested_at: number;
}

export interface StreamsTable {
  id: string;
  name: string;
  amplitude_api_key_enc: string;
  region: string;
  amplitude_url: string | null;
  webhook_secret_enc: string;
  event_names: string | null; // JSON: kind -> event_type overrides
  status: string; // 'active' | 'paused'
  status_reason: string | null;
  duplicates: number;
  /** Events ever forwarded, kept by the forwarder (forwarded rows are pruned after the retention period). */
  forwarded_total: number;
  created_at: number;
}

/** The event outbox: one row per accepted OneSignal event, unique per (stream, event id). */
export interface StreamEventsTable {
  id: Generated<number>;
  stream_id: string;
  event_id: string;
  kind: string;
  payload: string; // JSON: the Amplitude event to send
  status: string; // 'pending' | 'forwarded' | 'dead'
  attempts: number;
  next_attempt_at: number;
  reason: string | null;
  lease_owner: string | null;
  lease_until: number | null;
  received_at: number;
  forwarded_at: number | null;
}

/** The embedded (SQLite) job queue; PostgreSQL uses graphile-worker's own tables. */
export interface JobsTable {
  id: Generated<number>;
  task: string;
  payload: string;
  queue: string | null;
  job_key: string | null;
  run_at: number;
  attempts: number;
  max_attempts: number;
  locked_by: string | null;
  locked_until: number | null;
  last_error: string | null;
  created_at: number;
}

export interface PacingHandoffsTable {
  app_id: string;
  limiter_id: string;
  /** JSON PacingSnapshot of the limiter when its pass ended. */
  state: string;
}

/** Where alerts are sent (migration 009). */
export interface AlertChannelsTable {
  id: string;
  name: string;
  kind: string; // 'webhook' | 'slack' | 'email'
  /** JSON of the channel's settings without its secret. */
  settings: string;
  /** The encrypted secret: the webhook URL (it carries its token) or the SMTP password. */
  secret_enc: string | null;
  created_at: number;
}

/** One episode of an alert condition: open until the condition clears (migration 009). */
export interface AlertsTable {
  id: string;
  /** e.g. `run_failed:syn_…`; at most one open row per key. */
  condition_key: string;
  kind: string;
  subject_id: string;
  status: string; // 'open' | 'resolved'
  title: string;
  message: string;
  link: string | null;
  details: string; // JSON
  opened_at: number;
  resolved_at: number | null;
}

/** The alert outbox: what each channel is to be told, once (migration 009). */
export interface AlertNotificationsTable {
  id: string;
  alert_id: string;
  event: string; // 'opened' | 'resolved'
  channel_id: string;
  status: string; // 'pending' | 'sent' | 'failed'
  attempts: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  sent_at: number | null;
  created_at: number;
}

/** Which kinds of alert a channel hears (migration 011); a channel without rules hears every kind. */
export interface AlertRulesTable {
  id: string;
  channel_id: string;
  kind: string;
  /** The rule's own threshold for kinds that have one (migration 014); null: the default. */
  threshold: number | null;
  created_at: number;
}

/** One read-back verification of a sync (migration 011, src/sync/verify.ts). */
export interface VerificationsTable {
  id: string;
  sync_id: string;
  status: string; // 'running' | 'completed' | 'failed'
  trigger: string; // 'manual' | 'schedule'
  /** Users asked for; `checked` of them were read back (fewer when the ledger holds fewer). */
  sample_size: number;
  checked: number;
  matched: number;
  drifted: number;
  /** Read back, but their ledger row changed meanwhile (a delivery): neither matched nor drifted. */
  skipped: number;
  /** Drifted users marked pending again (--repair). */
  repaired: number;
  /** matched / (matched + drifted); null when nothing was compared. */
  match_rate: number | null;
  /** JSON: the drifted users, [{external_id, kind, expected, actual}], at most VERIFY_DRIFT_KEPT. */
  drift: string | null;
  error: string | null;
  started_at: number;
  finished_at: number | null;
  lease_until: number | null;
}

export interface DB {
  sources: SourcesTable;
  destinations: DestinationsTable;
  cohorts: CohortsTable;
  cohort_members: CohortMembersTable;
  syncs: SyncsTable;
  ledger: LedgerTable;
  staging: StagingTable;
  runs: RunsTable;
  webhook_inbox: WebhookInboxTable;
  downloads: DownloadsTable;
  streams: StreamsTable;
  stream_events: StreamEventsTable;
  jobs: JobsTable;
  pacing_handoffs: PacingHandoffsTable;
  alert_channels: AlertChannelsTable;
  alerts: AlertsTable;
  alert_notifications: AlertNotificationsTable;
  verifications: VerificationsTable;
  alert_rules: AlertRulesTable;
  run_keys: RunKeysTable;
  record_messages: RecordMessagesTable;
  run_records: RunRecordsTable;
}
