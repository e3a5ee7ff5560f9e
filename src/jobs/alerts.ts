import type { Selectable, UpdateQueryBuilder, UpdateResult } from 'kysely';
import { sendToChannel } from '../connectors/notify/channels';
import type { AlertEvent, AlertMessage } from '../connectors/notify/message';
import { type AmpError, type Backoff, retryDelayMs, toAmpError, withRetries } from '../errors';
import { newId } from '../ids';
import type { Context } from '../store';
import { keepRenewing, LEASE_MS } from '../store/leases';
import type { AlertsTable, DB } from '../store/schema';
import { log } from '../telemetry/logger';
import {
  type AlertCondition,
  type AlertSettings,
  alertLink,
  alertSettings,
  currentConditions,
  isThresholdKind,
  type RuleThresholds,
} from './alert-conditions';

/**
 * Alert evaluation, run by the scheduler every minute (task `alerts.evaluate`) and by
 * `ampsignal alert evaluate`. Any number of evaluators may run at once, in any processes:
 * - an alert opens with one INSERT that the partial unique index (one open alert per condition)
 *   lets only one evaluator win; the winner queues its notifications in the same transaction;
 * - it resolves with one UPDATE guarded on `status = 'open'`, again queuing in the same transaction;
 * - each notification is sent by whoever claims its lease (a guarded UPDATE), and marked sent.
 * So a channel hears of each alert once when it opens and once when it clears.
 */

export interface SendPolicy {
  /** Tries within one send: a blip (a dropped connection, one 503) is over in seconds. */
  tries: number;
  backoff: Backoff;
  /** Between sends of one notification, on later evaluations (full jitter, the retry policy). */
  laterBackoff: Backoff;
  /** Sends of one notification before it is given up as failed. */
  maxAttempts: number;
}

export const SEND_POLICY: SendPolicy = {
  tries: 3,
  backoff: { baseMs: 1_000, capMs: 10_000 },
  laterBackoff: { baseMs: 60_000, capMs: 60 * 60_000 },
  // About 7 hours of ceilings (1, 2, 4 … 60 min): a receiver down for a night is caught up.
  maxAttempts: 12,
};

/** Notifications looked at per evaluation; the rest wait a minute. */
const BATCH = 200;

export interface EvaluationResult {
  /** Conditions present now. */
  conditions: number;
  /** Condition keys this evaluation opened and resolved (another evaluator's are not counted). */
  opened: string[];
  resolved: string[];
  /** Notifications this evaluation sent, scheduled for another try, and gave up. */
  sent: number;
  retrying: number;
  failed: number;
}

export interface EvaluateOptions {
  now?: number;
  settings?: AlertSettings;
  workerId?: string;
  signal?: AbortSignal;
  policy?: SendPolicy;
}

export async function evaluateAlerts(ctx: Context, opts: EvaluateOptions = {}): Promise<EvaluationResult> {
  const now = opts.now ?? Date.now();
  const settings = opts.settings ?? alertSettings();
  // What is open is read BEFORE the conditions: an alert another evaluator opens meanwhile was
  // opened on a look older than ours, so ours may resolve it, and no older look can resolve one
  // opened on a newer one.
  const open = await ctx.store.db.selectFrom('alerts').selectAll().where('status', '=', 'open').execute();
  const conditions = await currentConditions(ctx, settings, now, await ruleThresholds(ctx));
  const present = new Map(conditions.map((c) => [c.key, c]));
  const openByKey = new Map(open.map((a) => [a.condition_key, a]));
  const opened: string[] = [];
  const resolved: string[] = [];
  for (const c of conditions) {
    const a = openByKey.get(c.key);
    if (!a) {
      if (await openAlert(ctx, c, settings, now)) opened.push(c.key);
    } else await refreshAlert(ctx, a, c, settings);
  }
  for (const a of open) {
    if (!present.has(a.condition_key) && (await resolveAlert(ctx, a.id, now))) resolved.push(a.condition_key);
  }
  if (opened.length) log.warn({ alerts: opened }, 'alerts opened');
  if (resolved.length) log.info({ alerts: resolved }, 'alerts resolved');
  const sent = await sendDueNotifications(ctx, {
    now,
    workerId: opts.workerId ?? newId('alr'),
    policy: opts.policy ?? SEND_POLICY,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return { conditions: conditions.length, opened, resolved, ...sent };
}

/** Inserts the open alert unless one is open for its key; the winner queues one notice per channel its rules let hear it. */
async function openAlert(ctx: Context, c: AlertCondition, s: AlertSettings, now: number): Promise<boolean> {
  const id = newId('alr');
  return ctx.store.db.transaction().execute(async (trx) => {
    // The write comes first: on SQLite the transaction then holds the write lock from its first
    // statement, so a second process waits for it instead of failing to upgrade a read.
    const inserted = await trx
      .insertInto('alerts')
      .values({
        id,
        condition_key: c.key,
        kind: c.kind,
        subject_id: c.subjectId,
        status: 'open',
        title: c.title,
        message: c.message,
        link: alertLink(s, c.path),
        details: JSON.stringify(c.details),
        opened_at: now,
        resolved_at: null,
      })
      .onConflict((oc) => oc.doNothing())
      .returning('id')
      .executeTakeFirst();
    if (!inserted) return false;
    const channels = await listeners(trx, c);
    await queueNotifications(trx, id, 'opened', channels, now);
    return true;
  });
}

/** The thresholds rules set of their own, per kind. */
async function ruleThresholds(ctx: Context): Promise<RuleThresholds> {
  const rows = await ctx.store.db
    .selectFrom('alert_rules')
    .select(['kind', 'threshold'])
    .where('threshold', 'is not', null)
    .execute();
  const out: RuleThresholds = {};
  for (const r of rows) {
    if (!isThresholdKind(r.kind)) continue;
    const list = out[r.kind] ?? [];
    list.push(Number(r.threshold));
    out[r.kind] = list;
  }
  return out;
}

/**
 * The channels that hear a condition: one without rules hears every kind at the default
 * threshold; one with rules only their kinds, each at the rule's threshold (null: the default).
 */
async function listeners(trx: Context['store']['db'], c: AlertCondition): Promise<string[]> {
  const rows = await trx
    .selectFrom('alert_channels as ch')
    .leftJoin('alert_rules as r', 'r.channel_id', 'ch.id')
    .select(['ch.id', 'r.kind', 'r.threshold'])
    .execute();
  const atLine = (threshold: number | null) =>
    !c.threshold || (threshold === null ? c.threshold.isDefault : Number(threshold) === c.threshold.value);
  const hears = new Map<string, boolean>();
  for (const r of rows) {
    const before = hears.get(r.id) ?? false;
    if (r.kind === null) hears.set(r.id, atLine(null));
    else hears.set(r.id, before || (r.kind === c.kind && atLine(r.threshold)));
  }
  return [...hears].filter(([, yes]) => yes).map(([id]) => id);
}

/** Keeps an open alert's text current (a growing count, a newer error) without telling anyone again. */
async function refreshAlert(
  ctx: Context,
  a: Selectable<AlertsTable>,
  c: AlertCondition,
  s: AlertSettings,
): Promise<void> {
  const link = alertLink(s, c.path);
  const details = JSON.stringify(c.details);
  if (a.title === c.title && a.message === c.message && a.link === link && a.details === details) return;
  await ctx.store.db
    .updateTable('alerts')
    .set({ title: c.title, message: c.message, link, details })
    .where('id', '=', a.id)
    .where('status', '=', 'open')
    .execute();
}

/** Resolves an open alert once; the one evaluator whose UPDATE matched tells the channels that heard it open. */
async function resolveAlert(ctx: Context, alertId: string, now: number): Promise<boolean> {
  return ctx.store.db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable('alerts')
      .set({ status: 'resolved', resolved_at: now })
      .where('id', '=', alertId)
      .where('status', '=', 'open')
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) return false;
    const told = await trx
      .selectFrom('alert_notifications')
      .select('channel_id')
      .where('alert_id', '=', alertId)
      .where('event', '=', 'opened')
      .execute();
    await queueNotifications(
      trx,
      alertId,
      'resolved',
      told.map((t) => t.channel_id),
      now,
    );
    return true;
  });
}

async function queueNotifications(
  trx: Context['store']['db'],
  alertId: string,
  event: 'opened' | 'resolved',
  channelIds: string[],
  now: number,
): Promise<void> {
  if (channelIds.length === 0) return;
  await trx
    .insertInto('alert_notifications')
    .values(
      channelIds.map((channel_id) => ({
        id: newId('ntf'),
        alert_id: alertId,
        event,
        channel_id,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        lease_owner: null,
        lease_until: null,
        last_error: null,
        sent_at: null,
        created_at: now,
      })),
    )
    .onConflict((oc) => oc.doNothing())
    .execute();
}

type DueRow = Awaited<ReturnType<typeof dueNotifications>>[number];

/**
 * Pending notifications whose time has come and whose lease is free, oldest first. A
 * "resolved" waits while its channel's "opened" for the same alert is still pending, so a
 * channel never hears that something cleared before it heard that it broke.
 */
function dueNotifications(ctx: Context, now: number) {
  return ctx.store.db
    .selectFrom('alert_notifications as n')
    .innerJoin('alerts as a', 'a.id', 'n.alert_id')
    .innerJoin('alert_channels as c', 'c.id', 'n.channel_id')
    .select([
      'n.id',
      'n.event',
      'n.attempts',
      'n.channel_id',
      'c.name as channel_name',
      'c.kind as channel_kind',
      'c.settings as channel_settings',
      'c.secret_enc as channel_secret_enc',
      'a.id as alert_id',
      'a.kind',
      'a.condition_key',
      'a.subject_id',
      'a.title',
      'a.message',
      'a.link',
      'a.details',
      'a.opened_at',
      'a.resolved_at',
    ])
    .where('n.status', '=', 'pending')
    .where('n.next_attempt_at', '<=', now)
    .where((eb) => eb.or([eb('n.lease_until', 'is', null), eb('n.lease_until', '<', now)]))
    .where((eb) =>
      eb.or([
        eb('n.event', '=', 'opened'),
        eb.not(
          eb.exists(
            eb
              .selectFrom('alert_notifications as o')
              .select('o.id')
              .whereRef('o.alert_id', '=', 'n.alert_id')
              .whereRef('o.channel_id', '=', 'n.channel_id')
              .where('o.event', '=', 'opened')
              .where('o.status', '=', 'pending'),
          ),
        ),
      ]),
    )
    .orderBy('n.created_at')
    .orderBy('n.event') // 'opened' before 'resolved' when both were queued at once
    .orderBy('n.id')
    .limit(BATCH)
    .execute();
}

function messageOf(row: DueRow): AlertMessage {
  return {
    id: row.id,
    event: row.event as AlertEvent,
    alert: {
      id: row.alert_id,
      kind: row.kind,
      condition: row.condition_key,
      subject_id: row.subject_id,
      title: row.title,
      message: row.message,
      link: row.link,
      details: JSON.parse(row.details) as Record<string, unknown>,
      opened_at: Number(row.opened_at),
      resolved_at: row.resolved_at === null ? null : Number(row.resolved_at),
    },
    sent_at: Date.now(),
  };
}

/**
 * Sends what is due, channels side by side and each channel's notices in order. A channel
 * that fails is left alone for the rest of this pass (its other notices would fail the same way).
 */
export async function sendDueNotifications(
  ctx: Context,
  opts: { now: number; workerId: string; policy: SendPolicy; signal?: AbortSignal },
): Promise<{ sent: number; retrying: number; failed: number }> {
  const due = await dueNotifications(ctx, opts.now);
  const byChannel = new Map<string, DueRow[]>();
  for (const row of due) {
    const list = byChannel.get(row.channel_id);
    if (list) list.push(row);
    else byChannel.set(row.channel_id, [row]);
  }
  const totals = { sent: 0, retrying: 0, failed: 0 };
  await Promise.all(
    [...byChannel.values()].map(async (rows) => {
      for (const row of rows) {
        if (opts.signal?.aborted) return;
        const outcome = await sendOne(ctx, row, opts);
        if (outcome !== 'skipped') totals[outcome]++;
        if (outcome === 'retrying' || outcome === 'failed') return;
      }
    }),
  );
  return totals;
}

type SendOptions = { now: number; workerId: string; policy: SendPolicy; signal?: AbortSignal };

async function sendOne(
  ctx: Context,
  row: DueRow,
  opts: SendOptions,
): Promise<'sent' | 'retrying' | 'failed' | 'skipped'> {
  const attempt = await claimNotification(ctx, row, opts);
  if (attempt === undefined) return 'skipped';
  const mine = () =>
    ctx.store.db.updateTable('alert_notifications').where('id', '=', row.id).where('lease_owner', '=', opts.workerId);
  const heartbeat = keepRenewing('alert notification', LEASE_MS, () =>
    mine()
      .set({ lease_until: Date.now() + LEASE_MS })
      .execute(),
  );
  let failure: AmpError | undefined;
  try {
    const channel = { kind: row.channel_kind, settings: row.channel_settings, secret_enc: row.channel_secret_enc };
    await withRetries(() => sendToChannel(channel, ctx.secrets, messageOf(row), opts.signal), {
      tries: opts.policy.tries,
      backoff: opts.policy.backoff,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    failure = toAmpError(e);
  } finally {
    await heartbeat.stop();
  }
  if (failure) return recordSendFailure(row, attempt, failure, opts, mine);
  await mine()
    .set({ status: 'sent', sent_at: Date.now(), lease_owner: null, lease_until: null, last_error: null })
    .execute();
  return 'sent';
}

/**
 * Claims a notice for one short lease, renewed while this process sends: the notice of a process
 * that died is another evaluator's within seconds (src/store/leases.ts). The attempt number, or
 * undefined when another process holds it. Leases run on the clock at the claim, not on the
 * pass's `now`: a pass whose look began over a lease ago would otherwise take a lease already
 * lapsed, and a second evaluator would send the same notice while the first still sends it.
 */
async function claimNotification(ctx: Context, row: DueRow, opts: SendOptions): Promise<number | undefined> {
  const at = Date.now();
  const claimed = await ctx.store.db
    .updateTable('alert_notifications')
    .set((eb) => ({
      lease_owner: opts.workerId,
      lease_until: at + LEASE_MS,
      attempts: eb('attempts', '+', 1),
    }))
    .where('id', '=', row.id)
    .where('status', '=', 'pending')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', at)]))
    .returning('attempts')
    .executeTakeFirst();
  return claimed ? Number(claimed.attempts) : undefined;
}

async function recordSendFailure(
  row: DueRow,
  attempt: number,
  failure: AmpError,
  opts: SendOptions,
  mine: () => UpdateQueryBuilder<DB, 'alert_notifications', 'alert_notifications', UpdateResult>,
): Promise<'retrying' | 'failed'> {
  const giveUp = !failure.retryable || attempt >= opts.policy.maxAttempts;
  const wait = retryDelayMs(opts.policy.laterBackoff, attempt, failure.retryAfterMs);
  await mine()
    .set({
      lease_owner: null,
      lease_until: null,
      last_error: failure.message.slice(0, 1000),
      ...(giveUp ? { status: 'failed' } : { next_attempt_at: opts.now + wait }),
    })
    .execute();
  log.warn(
    { notification: row.id, channel: row.channel_name, alert: row.condition_key, attempt, err: failure.message },
    giveUp ? 'alert notification failed for good' : 'alert notification failed; will retry',
  );
  return giveUp ? 'failed' : 'retrying';
}
