import { z } from 'zod';
import { sendToChannel } from '../connectors/notify/channels';
import { sampleMessage } from '../connectors/notify/message';
import { AmpError, toAmpError } from '../errors';
import { newId } from '../ids';
import { ALERT_KINDS, type AlertKind, isThresholdKind, THRESHOLDS } from '../jobs/alert-conditions';
import type { Context } from '../store';
import { isUniqueViolation } from '../store/constraints';
import { type ChannelTestResult, getChannel } from './alerts';

/**
 * Alert rules: which kinds of alert a channel hears. A channel without rules hears every kind
 * (what a new channel does); once it has rules, only their kinds. Every shell calls these.
 */

export interface RuleView {
  id: string;
  channel_id: string;
  channel_name: string;
  kind: AlertKind;
  /** The rule's own threshold (kinds with one: dead_letters, download_budget, realtime_silent, drift); null: the default. */
  threshold: number | null;
  created_at: number;
}

export const ruleInputSchema = z
  .strictObject({
    channel: z
      .string({ error: 'a channel id or name is required' })
      .trim()
      .min(1, 'a channel id or name is required')
      .max(200, 'at most 200 characters')
      .describe('channel id or name'),
    kind: z.enum(ALERT_KINDS, { error: `must be one of ${ALERT_KINDS.join(', ')}` }),
    threshold: z
      .number({ error: 'must be a number' })
      .nullish()
      .describe(
        `this rule's own threshold (default: the AMPSIGNAL_ALERT_* setting): ${Object.entries(THRESHOLDS)
          .map(([k, t]) => `${k} in ${t.unit} (${t.meaning})`)
          .join('; ')}`,
      ),
  })
  .superRefine((r, issues) => {
    if (r.threshold === undefined || r.threshold === null) return;
    const problem = thresholdProblem(r.kind, r.threshold);
    if (problem) issues.addIssue({ code: 'custom', path: ['threshold'], message: problem });
  });

function thresholdProblem(kind: AlertKind, value: number): string | undefined {
  if (!isThresholdKind(kind)) return `${kind} alerts have no threshold (only ${Object.keys(THRESHOLDS).join(', ')} do)`;
  const t = THRESHOLDS[kind];
  if (t.integer && !Number.isInteger(value)) return `must be a whole number of ${t.unit}`;
  if (value < t.min || value > t.max) return `must be between ${t.min} and ${t.max} ${t.unit} for ${kind}`;
  return undefined;
}

const ruleRef = z.string().trim().min(1, 'a rule id is required').max(200, 'at most 200 characters');

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new AmpError(
    'invalid_input',
    r.error.issues.map((i) => (i.path.length ? `${String(i.path[0])}: ${i.message}` : i.message)).join('; '),
  );
}

/** Sends alerts of `kind` to the channel (from now on, only the kinds its rules name). */
export async function addRule(ctx: Context, input: unknown): Promise<RuleView> {
  const { channel, kind, threshold } = parse(ruleInputSchema, input);
  const ch = await getChannel(ctx, channel);
  const row = { id: newId('rul'), channel_id: ch.id, kind, threshold: threshold ?? null, created_at: Date.now() };
  const taken = () => new AmpError('conflict', `channel ${ch.name} already has a rule for ${kind} alerts`);
  const existing = await ctx.store.db
    .selectFrom('alert_rules')
    .select('id')
    .where('channel_id', '=', ch.id)
    .where('kind', '=', kind)
    .executeTakeFirst();
  if (existing) throw taken();
  try {
    await ctx.store.db.insertInto('alert_rules').values(row).execute();
  } catch (e) {
    if (isUniqueViolation(e)) throw taken();
    throw e;
  }
  return { ...row, channel_name: ch.name };
}

export async function listRules(ctx: Context): Promise<RuleView[]> {
  const rows = await ctx.store.db
    .selectFrom('alert_rules as r')
    .innerJoin('alert_channels as c', 'c.id', 'r.channel_id')
    .select(['r.id', 'r.channel_id', 'c.name as channel_name', 'r.kind', 'r.threshold', 'r.created_at'])
    .orderBy('c.name')
    .orderBy('r.kind')
    .execute();
  return rows.map((r) => ({
    ...r,
    kind: r.kind as AlertKind,
    threshold: r.threshold === null ? null : Number(r.threshold),
    created_at: Number(r.created_at),
  }));
}

async function ruleOf(ctx: Context, ref: string): Promise<RuleView> {
  const id = parse(ruleRef, ref);
  const rule = (await listRules(ctx)).find((r) => r.id === id);
  if (!rule) throw new AmpError('not_found', `no alert rule "${id}"; see \`ampsignal alert rule list\``);
  return rule;
}

export async function deleteRule(ctx: Context, ref: string): Promise<RuleView> {
  const rule = await ruleOf(ctx, ref);
  await ctx.store.db.deleteFrom('alert_rules').where('id', '=', rule.id).execute();
  return rule;
}

/** Sends a sample alert of the rule's kind to its channel, now. A refusal is a result, not an error. */
export async function testRule(ctx: Context, ref: string): Promise<ChannelTestResult> {
  const rule = await ruleOf(ctx, ref);
  const channel = await ctx.store.db
    .selectFrom('alert_channels')
    .selectAll()
    .where('id', '=', rule.channel_id)
    .executeTakeFirstOrThrow();
  const sample = sampleMessage(channel.name, newId('ntf'));
  const message = {
    ...sample,
    alert: {
      ...sample.alert,
      kind: rule.kind,
      title: `Test ${rule.kind} alert from ampsignal to "${channel.name}"`,
      message: `This is a sample alert. Channel "${channel.name}" will hear ${rule.kind} alerts here.`,
    },
  };
  const started = Date.now();
  const base = { channel_id: channel.id, name: channel.name, kind: channel.kind };
  try {
    await sendToChannel(channel, ctx.secrets, message);
  } catch (e) {
    const err = toAmpError(e);
    if (err.kind === 'internal') throw err;
    return { ok: false, ...base, latency_ms: Date.now() - started, error: err.code, message: err.message };
  }
  return {
    ok: true,
    ...base,
    latency_ms: Date.now() - started,
    message: `sent a sample ${rule.kind} alert to ${channel.name} (${channel.kind})`,
  };
}
