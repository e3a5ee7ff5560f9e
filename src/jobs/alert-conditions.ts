import { z } from 'zod';
import { downloadsThisMonth, monthKey } from '../connectors/amplitude/budget';
import { AmpError } from '../errors';
import { countOutbox } from '../events/streams';
import type { Context } from '../store';
import { selectNamedSyncs } from '../sync/syncs';

/**
 * The conditions alerts watch, each read from the state the engine already keeps (no hook in
 * the engine): a condition is a key that is present while something is wrong. The evaluator
 * (alerts.ts) opens one alert per new key and resolves it when the key is gone.
 */
export const ALERT_KINDS = [
  'run_failed',
  'run_held',
  'destination_paused',
  'stream_paused',
  'dead_letters',
  'download_budget',
  'realtime_silent',
  'drift',
] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

export interface AlertCondition {
  /** `kind:subject`, e.g. `run_failed:syn_…`: the same key while the same thing stays wrong. */
  key: string;
  kind: AlertKind;
  subjectId: string;
  title: string;
  message: string;
  /** Path of the page in the web UI that shows it (the link is AMPSIGNAL_PUBLIC_URL + path). */
  path: string | null;
  details: Record<string, unknown>;
  /** A condition measured against a threshold: the threshold (in a rule's unit), and whether it is the default. */
  threshold?: { value: number; isDefault: boolean };
}

export interface AlertSettings {
  /** Base URL of the web UI as users reach it, for links in alerts; null = no links. */
  publicUrl: string | null;
  /** Alert when a stream holds more dead letters than this. */
  deadLetters: number;
  /** Alert when a source has used this share (percent) of its monthly download budget. */
  budgetPercent: number;
  /** Alert when a real-time sync has had no cohort webhook for longer than this. */
  realtimeSilenceMs: number;
  /** Alert when a sync's last read-back matched less than 100 − this percent of its sample. */
  driftPercent: number;
}

const MINUTE_MS = 60_000;

const number = (min: number, max: number) =>
  z.coerce
    .number({ message: 'must be a number' })
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

const SETTINGS = {
  AMPSIGNAL_PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://ampsignal.example.com' })
    .transform((s) => s.replace(/\/+$/, '')),
  AMPSIGNAL_ALERT_DEAD_LETTERS: number(0, 1e9).int('must be a whole number'),
  AMPSIGNAL_ALERT_BUDGET_PERCENT: number(1, 100),
  AMPSIGNAL_ALERT_REALTIME_SILENCE_MINUTES: number(1, 60 * 24 * 365),
  AMPSIGNAL_ALERT_DRIFT_PERCENT: number(0, 100),
} as const;

export const ALERT_DEFAULTS = {
  deadLetters: 100,
  budgetPercent: 80,
  // Amplitude checks a real-time cohort every minute but pushes only changes (reference
  // amplitude-api.md §3.1): a quiet cohort is silent for hours, so the default is a day.
  realtimeSilenceMinutes: 24 * 60,
  driftPercent: 5,
};

/** The alert settings from the environment; a bad value is one line naming the variable. */
export function alertSettings(env: NodeJS.ProcessEnv = process.env): AlertSettings {
  const read = <K extends keyof typeof SETTINGS>(name: K): z.output<(typeof SETTINGS)[K]> | undefined => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') return undefined;
    const r = SETTINGS[name].safeParse(raw.trim());
    if (!r.success)
      throw new AmpError('invalid_input', `${name} ${r.error.issues[0]?.message ?? 'is invalid'} (got "${raw}")`);
    return r.data as z.output<(typeof SETTINGS)[K]>;
  };
  return {
    publicUrl: read('AMPSIGNAL_PUBLIC_URL') ?? null,
    deadLetters: read('AMPSIGNAL_ALERT_DEAD_LETTERS') ?? ALERT_DEFAULTS.deadLetters,
    budgetPercent: read('AMPSIGNAL_ALERT_BUDGET_PERCENT') ?? ALERT_DEFAULTS.budgetPercent,
    realtimeSilenceMs:
      (read('AMPSIGNAL_ALERT_REALTIME_SILENCE_MINUTES') ?? ALERT_DEFAULTS.realtimeSilenceMinutes) * MINUTE_MS,
    driftPercent: read('AMPSIGNAL_ALERT_DRIFT_PERCENT') ?? ALERT_DEFAULTS.driftPercent,
  };
}

/** The link of a condition's page, when the UI's public URL is known. */
export function alertLink(settings: AlertSettings, path: string | null): string | null {
  return path && settings.publicUrl ? `${settings.publicUrl}${path}` : null;
}

/**
 * Kinds whose condition is measured against a threshold, which an alert rule may set for its
 * channel (in these units; the default is the process's setting).
 */
export const THRESHOLDS = {
  dead_letters: { unit: 'dead letters', min: 0, max: 1e9, integer: true, meaning: 'more dead letters than this' },
  download_budget: { unit: '%', min: 1, max: 100, integer: false, meaning: "this share of the month's downloads" },
  realtime_silent: {
    unit: 'minutes',
    min: 1,
    max: 60 * 24 * 365,
    integer: false,
    meaning: 'no cohort webhook for longer than this',
  },
  drift: { unit: '%', min: 0, max: 100, integer: false, meaning: 'more than this share of the sample drifted' },
} as const;
export type ThresholdKind = keyof typeof THRESHOLDS;
export const isThresholdKind = (k: string): k is ThresholdKind => Object.hasOwn(THRESHOLDS, k);

/** The process's threshold of a kind, in a rule's unit. */
export function defaultThreshold(kind: ThresholdKind, s: AlertSettings): number {
  if (kind === 'dead_letters') return s.deadLetters;
  if (kind === 'download_budget') return s.budgetPercent;
  if (kind === 'realtime_silent') return s.realtimeSilenceMs / MINUTE_MS;
  return s.driftPercent;
}

function withThreshold(s: AlertSettings, kind: ThresholdKind, t: number): AlertSettings {
  if (kind === 'dead_letters') return { ...s, deadLetters: t };
  if (kind === 'download_budget') return { ...s, budgetPercent: t };
  if (kind === 'realtime_silent') return { ...s, realtimeSilenceMs: t * MINUTE_MS };
  return { ...s, driftPercent: t };
}

/** Thresholds rules set, beside the defaults: per kind, each distinct value. */
export type RuleThresholds = Partial<Record<ThresholdKind, number[]>>;

/**
 * A threshold condition at the default and at each rule's own threshold. The default keeps the
 * plain key (`dead_letters:str_…`); another threshold is its own condition (`…@10`), opened and
 * resolved on its own, so each channel hears of what crosses its rule's line.
 */
async function atThresholds(
  kind: ThresholdKind,
  s: AlertSettings,
  extra: RuleThresholds,
  look: (s: AlertSettings) => Promise<AlertCondition[]> | AlertCondition[],
): Promise<AlertCondition[]> {
  const def = defaultThreshold(kind, s);
  const out: AlertCondition[] = [];
  for (const t of [...new Set([def, ...(extra[kind] ?? [])])]) {
    const isDefault = t === def;
    for (const c of await look(withThreshold(s, kind, t)))
      out.push({
        ...c,
        key: isDefault ? c.key : `${c.key}@${t}`,
        message: isDefault
          ? c.message
          : c.message.replace(/(, | \()AMPSIGNAL_ALERT_[A-Z_]+\)/, "$1an alert rule's threshold)"),
        threshold: { value: t, isDefault },
      });
  }
  return out;
}

/** Every condition present now, in a stable order; threshold conditions also at each threshold rules set. */
export async function currentConditions(
  ctx: Context,
  s: AlertSettings,
  now: number,
  thresholds: RuleThresholds = {},
): Promise<AlertCondition[]> {
  const labels = await syncLabels(ctx);
  return [
    ...(await failedRuns(ctx, labels)),
    ...(await heldRuns(ctx, labels, s)),
    ...(await pausedDestinations(ctx)),
    ...(await pausedStreams(ctx)),
    ...(await atThresholds('dead_letters', s, thresholds, (x) => deadLetters(ctx, x))),
    ...(await atThresholds('download_budget', s, thresholds, (x) => downloadBudgets(ctx, x, now))),
    ...(await atThresholds('realtime_silent', s, thresholds, (x) => silentRealtimeSyncs(ctx, labels, x, now))),
    ...(await atThresholds('drift', s, thresholds, (x) => drift(labels, x))),
  ];
}

interface SyncLabel {
  id: string;
  cohortId: string;
  cadence: string;
  createdAt: number;
  matchRate: number | null;
  verifiedAt: number | null;
  /** `Cohort name → Destination name`. */
  label: string;
}

/** Active syncs, with the names a person recognises them by. */
async function syncLabels(ctx: Context): Promise<Map<string, SyncLabel>> {
  const rows = await selectNamedSyncs(ctx)
    .select([
      'syncs.id',
      'syncs.cohort_id',
      'syncs.cadence',
      'syncs.created_at',
      'syncs.verify_match_rate',
      'syncs.verified_at',
    ])
    .where('syncs.status', '=', 'active')
    .execute();
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        cohortId: r.cohort_id,
        cadence: r.cadence,
        createdAt: Number(r.created_at),
        matchRate: r.verify_match_rate === null ? null : Number(r.verify_match_rate),
        verifiedAt: r.verified_at === null ? null : Number(r.verified_at),
        label: `${r.cohort_name ?? r.cohort_id} → ${r.destination_name ?? r.id}`,
      },
    ]),
  );
}

/**
 * A sync whose last finished run (completed or failed; dry runs, held and rejected runs say
 * nothing about delivery) failed. It clears when a later run completes.
 */
async function failedRuns(ctx: Context, syncs: Map<string, SyncLabel>): Promise<AlertCondition[]> {
  if (syncs.size === 0) return [];
  const db = ctx.store.db;
  // The newest finished run per sync, walking the (sync_id, started_at) index from its end.
  const latest = await db
    .selectFrom('syncs as s')
    .select((eb) => [
      's.id as sync_id',
      eb
        .selectFrom('runs as r')
        .select('r.id')
        .whereRef('r.sync_id', '=', 's.id')
        .where('r.dry_run', '=', 0)
        .where('r.status', 'in', ['completed', 'failed'])
        .orderBy('r.started_at', 'desc')
        .orderBy('r.id', 'desc')
        .limit(1)
        .as('run_id'),
    ])
    .where('s.status', '=', 'active')
    .execute();
  const ids = latest.map((l) => l.run_id).filter((id): id is string => id !== null);
  if (ids.length === 0) return [];
  const failed = await db
    .selectFrom('runs')
    .select(['id', 'sync_id', 'error', 'finished_at'])
    .where('id', 'in', ids)
    .where('status', '=', 'failed')
    .execute();
  return failed
    .filter((r) => syncs.has(r.sync_id))
    .map((r) => {
      const sync = syncs.get(r.sync_id)!;
      return {
        key: `run_failed:${r.sync_id}`,
        kind: 'run_failed',
        subjectId: r.sync_id,
        title: `Sync failed: ${sync.label}`,
        message: `Run ${r.id} of sync ${r.sync_id} (${sync.label}) failed: ${r.error ?? 'no error recorded'}. It clears when a later run completes.`,
        path: `/runs/${r.id}`,
        details: { sync_id: r.sync_id, run_id: r.id, error: r.error, finished_at: r.finished_at },
      } satisfies AlertCondition;
    });
}

/** A run held by the guard, waiting for a person: one alert per run, with the approve link. */
async function heldRuns(ctx: Context, syncs: Map<string, SyncLabel>, s: AlertSettings): Promise<AlertCondition[]> {
  const held = await ctx.store.db
    .selectFrom('runs')
    .select(['id', 'sync_id', 'hold_reason', 'added', 'removed'])
    .where('status', '=', 'held')
    .orderBy('id')
    .execute();
  return held.map((r) => {
    const label = syncs.get(r.sync_id)?.label ?? `sync ${r.sync_id}`;
    const path = `/runs/${r.id}`;
    const link = alertLink(s, path);
    const where = link
      ? `Approve or reject it at ${link}`
      : `Approve or reject it on its page (${path} in the web UI; set AMPSIGNAL_PUBLIC_URL for a link)`;
    return {
      key: `run_held:${r.id}`,
      kind: 'run_held',
      subjectId: r.id,
      title: `Run held for approval: ${label}`,
      message: `Run ${r.id} of sync ${r.sync_id} is held: ${r.hold_reason ?? 'the guard stopped it'}. ${where}, or run \`ampsignal runs approve ${r.id}\` / \`ampsignal runs reject ${r.id}\`.`,
      path,
      details: {
        sync_id: r.sync_id,
        run_id: r.id,
        hold_reason: r.hold_reason,
        added: Number(r.added),
        removed: Number(r.removed),
      },
    } satisfies AlertCondition;
  });
}

/** A destination paused (OneSignal refused its key, or a person paused it), with the reason it keeps. */
async function pausedDestinations(ctx: Context): Promise<AlertCondition[]> {
  const rows = await ctx.store.db
    .selectFrom('destinations')
    .select(['id', 'name', 'app_id', 'status_reason'])
    .where('status', '=', 'paused')
    .orderBy('id')
    .execute();
  return rows.map((d) => ({
    key: `destination_paused:${d.id}`,
    kind: 'destination_paused',
    subjectId: d.id,
    title: `Destination paused: ${d.name}`,
    message: `Delivery to destination ${d.id} (${d.name}, OneSignal app ${d.app_id}) is paused: ${d.status_reason ?? 'no reason given'}. Its changes wait; fix the key, then \`ampsignal destination resume ${d.id}\`.`,
    path: '/',
    details: { destination_id: d.id, app_id: d.app_id, reason: d.status_reason },
  }));
}

/** A stream paused (Amplitude refused its key, or a person paused it). */
async function pausedStreams(ctx: Context): Promise<AlertCondition[]> {
  const rows = await ctx.store.db
    .selectFrom('streams')
    .select(['id', 'name', 'status_reason'])
    .where('status', '=', 'paused')
    .orderBy('id')
    .execute();
  return rows.map((st) => ({
    key: `stream_paused:${st.id}`,
    kind: 'stream_paused',
    subjectId: st.id,
    title: `Stream paused: ${st.name}`,
    message: `Forwarding of stream ${st.id} (${st.name}) to Amplitude is paused: ${st.status_reason ?? 'no reason given'}. Events wait in its outbox.`,
    path: '/streams',
    details: { stream_id: st.id, reason: st.status_reason },
  }));
}

/** A stream holding more dead letters than the threshold. */
async function deadLetters(ctx: Context, s: AlertSettings): Promise<AlertCondition[]> {
  const counts = await countOutbox(ctx, { status: 'dead' });
  const over = [...counts].filter(([, n]) => n > s.deadLetters);
  if (over.length === 0) return [];
  const names = new Map(
    (
      await ctx.store.db
        .selectFrom('streams')
        .select(['id', 'name'])
        .where(
          'id',
          'in',
          over.map(([id]) => id),
        )
        .execute()
    ).map((r) => [r.id, r.name]),
  );
  return over
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([id, n]) => ({
      key: `dead_letters:${id}`,
      kind: 'dead_letters',
      subjectId: id,
      title: `Dead letters above ${s.deadLetters}: stream ${names.get(id) ?? id}`,
      message: `Stream ${id} (${names.get(id) ?? id}) holds ${n} dead letter(s), events Amplitude refused or that could not be sent (threshold ${s.deadLetters}, AMPSIGNAL_ALERT_DEAD_LETTERS). See \`ampsignal dead-letters list --stream ${id}\`; replay them once fixed.`,
      path: `/streams/${id}/dead-letters`,
      details: { stream_id: id, dead_letters: n, threshold: s.deadLetters },
    }));
}

/** A source that has used the set share of this month's cohort downloads. Clears on the 1st (UTC). */
async function downloadBudgets(ctx: Context, s: AlertSettings, now: number): Promise<AlertCondition[]> {
  const sources = await ctx.store.db
    .selectFrom('sources')
    .select(['id', 'name', 'download_budget'])
    .orderBy('id')
    .execute();
  const out: AlertCondition[] = [];
  for (const src of sources) {
    const budget = Number(src.download_budget);
    if (budget <= 0) continue;
    const used = await downloadsThisMonth(ctx, src.id, now);
    const percent = Math.floor((used / budget) * 100);
    if (used / budget < s.budgetPercent / 100) continue;
    const month = monthKey(now);
    out.push({
      key: `download_budget:${src.id}`,
      kind: 'download_budget',
      subjectId: src.id,
      title: `Download budget at ${percent}%: source ${src.name}`,
      message: `Source ${src.id} (${src.name}) has used ${used} of its ${budget} Amplitude cohort downloads for ${month} (${percent}%, alert at ${s.budgetPercent}%). When it is spent, pulls wait for the 1st (UTC); slow a cadence down, or raise the budget if your Amplitude plan allows more.`,
      path: null,
      details: { source_id: src.id, month, used, budget, percent },
    });
  }
  return out;
}

function duration(ms: number): string {
  const minutes = Math.round(ms / MINUTE_MS);
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.round(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
}

/** A real-time sync whose cohort has pushed no webhook for longer than expected (since its creation at the earliest). */
async function silentRealtimeSyncs(
  ctx: Context,
  syncs: Map<string, SyncLabel>,
  s: AlertSettings,
  now: number,
): Promise<AlertCondition[]> {
  const out: AlertCondition[] = [];
  for (const sync of syncs.values()) {
    if (sync.cadence !== 'realtime') continue;
    // By the (cohort_id, received_at) index alone.
    const r = await ctx.store.db
      .selectFrom('webhook_inbox')
      .select((eb) => eb.fn.max('received_at').as('last'))
      .where('cohort_id', '=', sync.cohortId)
      .executeTakeFirst();
    const last = r?.last === null || r?.last === undefined ? null : Number(r.last);
    const since = Math.max(last ?? 0, sync.createdAt);
    if (now - since <= s.realtimeSilenceMs) continue;
    const what =
      last !== null && last >= sync.createdAt
        ? `its last cohort webhook arrived ${duration(now - last)} ago`
        : `no cohort webhook has arrived since it was created ${duration(now - sync.createdAt)} ago`;
    out.push({
      key: `realtime_silent:${sync.id}`,
      kind: 'realtime_silent',
      subjectId: sync.id,
      title: `Real-time sync silent: ${sync.label}`,
      message: `Real-time sync ${sync.id} (${sync.label}): ${what}; expected one at least every ${duration(s.realtimeSilenceMs)} (AMPSIGNAL_ALERT_REALTIME_SILENCE_MINUTES). Check the cohort's webhook destination in Amplitude; the daily reconcile pull still runs.`,
      path: `/syncs/${sync.id}`,
      details: { sync_id: sync.id, cohort_id: sync.cohortId, last_webhook_at: last, silence_ms: now - since },
    });
  }
  return out;
}

/**
 * A sync whose last read-back (`sync verify`) matched too few of its sampled users. Verify only
 * writes `syncs.verify_match_rate` (0..1) and `verified_at`; a later verify above the line clears it.
 */
function drift(syncs: Map<string, SyncLabel>, s: AlertSettings): AlertCondition[] {
  const floor = 1 - s.driftPercent / 100;
  const out: AlertCondition[] = [];
  for (const sync of syncs.values()) {
    if (sync.matchRate === null || sync.matchRate >= floor) continue;
    const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;
    out.push({
      key: `drift:${sync.id}`,
      kind: 'drift',
      subjectId: sync.id,
      title: `Read-back drift: ${sync.label}`,
      message: `The last read-back of sync ${sync.id} (${sync.label}) found ${pct(sync.matchRate)} of sampled users with the tags the ledger expects (alert below ${pct(floor)}, AMPSIGNAL_ALERT_DRIFT_PERCENT). Tags changed behind the sync's back; \`ampsignal sync verify ${sync.id} --repair\` marks the drifted users for the next delivery.`,
      path: `/syncs/${sync.id}`,
      details: { sync_id: sync.id, match_rate: sync.matchRate, verified_at: sync.verifiedAt, floor },
    });
  }
  return out;
}
