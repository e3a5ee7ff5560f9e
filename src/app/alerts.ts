import type { Selectable } from 'kysely';
import { z } from 'zod';
import {
  type ChannelSettings,
  channelInputSchema,
  channelRow,
  channelSettings,
  sendToChannel,
} from '../connectors/notify/channels';
import { sampleMessage } from '../connectors/notify/message';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import { type EvaluationResult, evaluateAlerts } from '../jobs/alerts';
import type { Context } from '../store';
import { isUniqueViolation } from '../store/constraints';
import type { AlertChannelsTable } from '../store/schema';

/**
 * Alerts as a user sees them: channels (add, list, show, delete, test) and alerts (list,
 * evaluate now). Every shell (CLI, API, UI) calls these; validation lives here, once.
 */

export interface ChannelView {
  id: string;
  name: string;
  kind: string;
  /** Never the secret: a webhook URL is shown as its origin, an SMTP password not at all. */
  settings: ChannelSettings & { password_set?: boolean };
  created_at: number;
}

export interface AlertView {
  id: string;
  condition: string;
  kind: string;
  subject_id: string;
  status: 'open' | 'resolved';
  title: string;
  message: string;
  link: string | null;
  details: Record<string, unknown>;
  opened_at: number;
  resolved_at: number | null;
  /** Notifications of this alert by state, over all channels. */
  notifications: { sent: number; pending: number; failed: number };
}

export interface ChannelTestResult {
  ok: boolean;
  channel_id: string;
  name: string;
  kind: string;
  latency_ms: number;
  error?: string;
  message: string;
}

type ChannelRow = Selectable<AlertChannelsTable>;

/** Any field of the input, checked by the one schema; the message names each bad field (`label` renders a field name). */
export function parseChannelInput(input: unknown, label: (field: string) => string = (f) => f) {
  const r = channelInputSchema.safeParse(input);
  if (r.success) return r.data;
  const kind = (input as { kind?: unknown } | null)?.kind;
  const msg = r.error.issues
    .map((i) => {
      if (i.code === 'unrecognized_keys')
        return `${i.keys.map(label).join(', ')} ${i.keys.length === 1 ? 'does' : 'do'} not apply to a${kind === 'email' ? 'n' : ''} ${String(kind)} channel`;
      return i.path.length ? `${label(String(i.path[0]))}: ${i.message}` : i.message;
    })
    .join('; ');
  throw new AmpError('invalid_input', msg);
}

export function channelView(row: ChannelRow): ChannelView {
  const settings = channelSettings(row);
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    settings: row.kind === 'email' ? { ...settings, password_set: row.secret_enc !== null } : settings,
    created_at: Number(row.created_at),
  };
}

/** Adds a channel; its URL or password is encrypted at rest. Names are unique. */
export async function addChannel(
  ctx: Context,
  input: unknown,
  opts: { label?: (field: string) => string } = {},
): Promise<ChannelView> {
  const parsed = parseChannelInput(input, opts.label);
  const row: ChannelRow = { id: newId('chn'), created_at: Date.now(), ...channelRow(parsed, ctx.secrets) };
  const taken = () =>
    new AmpError('conflict', `an alert channel named "${parsed.name}" already exists; pick another name`);
  const existing = await ctx.store.db
    .selectFrom('alert_channels')
    .select('id')
    .where('name', '=', parsed.name)
    .executeTakeFirst();
  if (existing) throw taken();
  try {
    await ctx.store.db.insertInto('alert_channels').values(row).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw taken();
    throw e;
  }
  return channelView(row);
}

const channelRef = z.string().trim().min(1, 'a channel id or name is required').max(200, 'at most 200 characters');

/** A channel by id or, failing that, by name. */
async function channelRowOf(ctx: Context, ref: string): Promise<ChannelRow> {
  const r = channelRef.safeParse(ref);
  if (!r.success) throw new AmpError('invalid_input', r.error.issues[0]!.message);
  const row =
    (await ctx.store.db.selectFrom('alert_channels').selectAll().where('id', '=', r.data).executeTakeFirst()) ??
    (await ctx.store.db.selectFrom('alert_channels').selectAll().where('name', '=', r.data).executeTakeFirst());
  if (!row)
    throw new AmpError(
      'not_found',
      `no alert channel "${r.data}" (by id or name); see \`ampsignal alert channel list\``,
    );
  return row;
}

export async function getChannel(ctx: Context, ref: string): Promise<ChannelView> {
  return channelView(await channelRowOf(ctx, ref));
}

export async function listChannels(ctx: Context): Promise<ChannelView[]> {
  const rows = await ctx.store.db
    .selectFrom('alert_channels')
    .selectAll()
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  return rows.map(channelView);
}

/** Deletes a channel and what was still to be sent to it. */
export async function deleteChannel(ctx: Context, ref: string): Promise<ChannelView> {
  const row = await channelRowOf(ctx, ref);
  await ctx.store.db.transaction().execute(async (trx) => {
    await trx.deleteFrom('alert_notifications').where('channel_id', '=', row.id).execute();
    await trx.deleteFrom('alert_rules').where('channel_id', '=', row.id).execute();
    await trx.deleteFrom('alert_channels').where('id', '=', row.id).execute();
  });
  return channelView(row);
}

/**
 * Sends a sample alert to a channel, once, now. A refusal is a result (ok=false with the
 * receiver's answer), not an error: it is what the person asked to find out.
 */
export async function testChannel(ctx: Context, ref: string): Promise<ChannelTestResult> {
  const row = await channelRowOf(ctx, ref);
  const started = Date.now();
  const base = { channel_id: row.id, name: row.name, kind: row.kind };
  try {
    await sendToChannel(row, ctx.secrets, sampleMessage(row.name, newId('ntf')));
  } catch (e) {
    const err = toAmpError(e);
    if (err.kind === 'internal') throw err;
    return { ok: false, ...base, latency_ms: Date.now() - started, error: err.code, message: err.message };
  }
  return {
    ok: true,
    ...base,
    latency_ms: Date.now() - started,
    message: `sent a sample alert to ${row.name} (${row.kind})`,
  };
}

export const ALERT_STATUSES = ['open', 'resolved', 'all'] as const;

export const alertsQuery = z.object({
  status: z.enum(ALERT_STATUSES, { error: `must be one of ${ALERT_STATUSES.join(', ')}` }).default('open'),
  limit: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(100),
});
export type AlertsQuery = z.input<typeof alertsQuery>;

/** Alerts, newest first: open ones by default. */
export async function listAlerts(ctx: Context, query: AlertsQuery = {}): Promise<AlertView[]> {
  const r = alertsQuery.safeParse(query);
  if (!r.success)
    throw new AmpError('invalid_input', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const q = r.data;
  let sel = ctx.store.db
    .selectFrom('alerts')
    .selectAll()
    .orderBy('opened_at', 'desc')
    .orderBy('id', 'desc')
    .limit(q.limit);
  if (q.status !== 'all') sel = sel.where('status', '=', q.status);
  const rows = await sel.execute();
  if (rows.length === 0) return [];
  const counts = await ctx.store.db
    .selectFrom('alert_notifications')
    .select(['alert_id', 'status', (eb) => eb.fn.countAll().as('n')])
    .where(
      'alert_id',
      'in',
      rows.map((a) => a.id),
    )
    .groupBy(['alert_id', 'status'])
    .execute();
  const byAlert = new Map<string, AlertView['notifications']>();
  for (const c of counts) {
    const n = byAlert.get(c.alert_id) ?? { sent: 0, pending: 0, failed: 0 };
    if (c.status === 'sent' || c.status === 'pending' || c.status === 'failed') n[c.status] += Number(c.n);
    byAlert.set(c.alert_id, n);
  }
  return rows.map((a) => ({
    id: a.id,
    condition: a.condition_key,
    kind: a.kind,
    subject_id: a.subject_id,
    status: a.status as AlertView['status'],
    title: a.title,
    message: a.message,
    link: a.link,
    details: JSON.parse(a.details) as Record<string, unknown>,
    opened_at: Number(a.opened_at),
    resolved_at: a.resolved_at === null ? null : Number(a.resolved_at),
    notifications: byAlert.get(a.id) ?? { sent: 0, pending: 0, failed: 0 },
  }));
}

/** Looks at every condition now and sends what is due: what the scheduler does every minute. */
export function evaluateNow(ctx: Context): Promise<EvaluationResult> {
  return evaluateAlerts(ctx);
}
