import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { addRule, deleteRule, listRules, ruleInputSchema, testRule } from '../../app/alert-rules';
import {
  addChannel,
  alertsQuery,
  deleteChannel,
  evaluateNow,
  getChannel,
  listAlerts,
  listChannels,
  testChannel,
} from '../../app/alerts';
import { CHANNEL_KINDS, channelInputSchema } from '../../connectors/notify/channels';
import { ALERT_KINDS } from '../../jobs/alert-conditions';
import type { Context } from '../../store';
import { parseOr400 } from './errors';
import { idParam } from './schemas';

/**
 * Alert channels and alerts under /api/v1. The handlers validate with the same zod schemas the
 * OpenAPI document is generated from (request and response), and call src/app/alerts.ts.
 */

export const channelViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(CHANNEL_KINDS),
  settings: z
    .object({
      url: z.string().optional().describe('webhook and slack: the URL origin only; the full URL is stored encrypted'),
      host: z.string().optional(),
      port: z.number().int().optional(),
      security: z.string().optional(),
      user: z.string().nullable().optional(),
      from: z.string().optional(),
      to: z.array(z.string()).optional(),
      password_set: z.boolean().optional(),
    })
    .describe('never a secret'),
  created_at: z.number().int().describe('epoch ms'),
});

export const alertViewSchema = z.object({
  id: z.string(),
  condition: z.string().describe('`kind:subject`, e.g. run_failed:syn_…; one open alert per condition'),
  kind: z.enum(ALERT_KINDS),
  subject_id: z.string(),
  status: z.enum(['open', 'resolved']),
  title: z.string(),
  message: z.string(),
  link: z.string().nullable().describe('the page in the web UI, when AMPSIGNAL_PUBLIC_URL is set'),
  details: z.record(z.string(), z.unknown()),
  opened_at: z.number().int(),
  resolved_at: z.number().int().nullable(),
  notifications: z.object({ sent: z.number().int(), pending: z.number().int(), failed: z.number().int() }),
});

export const channelTestSchema = z.object({
  ok: z.boolean(),
  channel_id: z.string(),
  name: z.string(),
  kind: z.string(),
  latency_ms: z.number(),
  error: z.string().optional().describe('catalogue code when the receiver refused or was unreachable'),
  message: z.string(),
});

export const ruleViewSchema = z.object({
  id: z.string(),
  channel_id: z.string(),
  channel_name: z.string(),
  kind: z.enum(ALERT_KINDS).describe('the channel hears alerts of this kind'),
  threshold: z.number().nullable().describe("the rule's own threshold; null: the default (AMPSIGNAL_ALERT_*)"),
  created_at: z.number().int(),
});

export const evaluationSchema = z.object({
  opened: z.array(z.string()).describe('conditions that opened an alert'),
  resolved: z.array(z.string()).describe('conditions that cleared'),
});

/** Registers the routes on the /api/v1 scope (auth and the error handler come from it). */
export function registerAlertRoutes(api: FastifyInstance, ctx: Context): void {
  api.get('/alert-channels', async () => ({ channels: await listChannels(ctx) }));
  api.post('/alert-channels', async (req, reply) => reply.code(201).send(await addChannel(ctx, req.body ?? {})));
  api.get('/alert-channels/:id', async (req) => getChannel(ctx, parseOr400(idParam, req.params, 'path').id));
  api.delete('/alert-channels/:id', async (req) => deleteChannel(ctx, parseOr400(idParam, req.params, 'path').id));
  api.post('/alert-channels/:id/test', async (req) => testChannel(ctx, parseOr400(idParam, req.params, 'path').id));
  api.get('/alert-rules', async () => ({ rules: await listRules(ctx) }));
  api.post('/alert-rules', async (req, reply) => reply.code(201).send(await addRule(ctx, req.body ?? {})));
  api.delete('/alert-rules/:id', async (req) => deleteRule(ctx, parseOr400(idParam, req.params, 'path').id));
  api.post('/alert-rules/:id/test', async (req) => testRule(ctx, parseOr400(idParam, req.params, 'path').id));
  api.get('/alerts', async (req) => ({ alerts: await listAlerts(ctx, parseOr400(alertsQuery, req.query, 'query')) }));
  api.post('/alerts/evaluate', async () => {
    const r = await evaluateNow(ctx);
    return { opened: r.opened, resolved: r.resolved };
  });
}

type Json = Record<string, unknown>;

const json = (s: z.ZodType, io: 'input' | 'output' = 'output'): Json =>
  z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Json;

const content = (schema: Json) => ({ 'application/json': { schema } });
const ok = (description: string, schema: Json, status = '200'): Json => ({
  [status]: { description, content: content(schema) },
});
const errors = (...codes: number[]): Json =>
  Object.fromEntries(
    codes.map((c) => [String(c), { description: 'error', content: content({ $ref: '#/components/schemas/Error' }) }]),
  );
const idPath = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'channel id' };
const op = (summary: string, extra: Json): Json => ({
  summary,
  security: [{ bearer: [] }],
  tags: ['alerts'],
  ...extra,
});

function queryParams(s: z.ZodObject): Json[] {
  const schema = json(s, 'input') as { properties?: Record<string, Json> };
  return Object.entries(schema.properties ?? {}).map(([name, p]) => ({
    name,
    in: 'query',
    required: false,
    schema: p,
  }));
}

/** The OpenAPI paths of these routes, from the zod schemas above. */
export function alertPaths(): Json {
  const channel = json(channelViewSchema);
  return {
    '/alert-channels': {
      get: op('List alert channels (never their URLs or passwords)', {
        responses: { ...ok('`{channels}`', json(z.object({ channels: z.array(channelViewSchema) }))), ...errors(401) },
      }),
      post: op('Add an alert channel: a JSON webhook, a Slack-compatible incoming webhook, or e-mail over SMTP', {
        requestBody: { required: true, content: content(json(channelInputSchema, 'input')) },
        responses: { ...ok('the channel', channel, '201'), ...errors(400, 401, 409) },
      }),
    },
    '/alert-channels/{id}': {
      get: op('One alert channel', {
        parameters: [idPath],
        responses: { ...ok('channel', channel), ...errors(401, 404) },
      }),
      delete: op('Delete an alert channel and what was still to be sent to it', {
        parameters: [idPath],
        responses: { ...ok('the deleted channel', channel), ...errors(401, 404) },
      }),
    },
    '/alert-channels/{id}/test': {
      post: op('Send a sample alert to the channel now; a refusal is ok=false, not an HTTP error', {
        parameters: [idPath],
        responses: { ...ok('the outcome', json(channelTestSchema)), ...errors(401, 404) },
      }),
    },
    '/alert-rules': {
      get: op('List alert rules: a channel without rules hears every kind of alert, one with rules only their kinds', {
        responses: { ...ok('`{rules}`', json(z.object({ rules: z.array(ruleViewSchema) }))), ...errors(401) },
      }),
      post: op('Send alerts of one kind to a channel (from then on it hears only the kinds its rules name)', {
        requestBody: { required: true, content: content(json(ruleInputSchema, 'input')) },
        responses: { ...ok('the rule', json(ruleViewSchema), '201'), ...errors(400, 401, 404, 409) },
      }),
    },
    '/alert-rules/{id}': {
      delete: op('Delete an alert rule', {
        parameters: [{ ...idPath, description: 'rule id' }],
        responses: { ...ok('the deleted rule', json(ruleViewSchema)), ...errors(401, 404) },
      }),
    },
    '/alert-rules/{id}/test': {
      post: op("Send a sample alert of the rule's kind to its channel now; a refusal is ok=false", {
        parameters: [{ ...idPath, description: 'rule id' }],
        responses: { ...ok('the outcome', json(channelTestSchema)), ...errors(401, 404) },
      }),
    },
    '/alerts': {
      get: op('Alerts, newest first (open ones by default)', {
        parameters: queryParams(alertsQuery),
        responses: { ...ok('`{alerts}`', json(z.object({ alerts: z.array(alertViewSchema) }))), ...errors(400, 401) },
      }),
    },
    '/alerts/evaluate': {
      post: op('Look at every alert condition now and send what is due (the scheduler does it every minute)', {
        responses: {
          ...ok('conditions opened and resolved by this evaluation', json(evaluationSchema)),
          ...errors(401),
        },
      }),
    },
  };
}
