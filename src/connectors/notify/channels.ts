import { z } from 'zod';
import { AmpError } from '../../errors';
import type { SecretBox } from '../../store';
import type { AlertChannelsTable } from '../../store/schema';
import { type EmailSettings, SMTP_SECURITY, type SmtpSecurity, sendEmail } from './email';
import type { AlertMessage } from './message';
import { sendSlack, sendWebhook } from './webhook';

/**
 * Alert channels: a generic JSON webhook, a Slack-compatible incoming webhook, e-mail over SMTP.
 * Their settings as a user gives them (zod, shared by the CLI, API and UI), how they are stored
 * (settings without secrets + one encrypted secret), and the one way to send to one.
 */
export const CHANNEL_KINDS = ['webhook', 'slack', 'email'] as const;
export type ChannelKind = (typeof CHANNEL_KINDS)[number];

const name = z.string().trim().min(1, 'a name is required').max(100, 'at most 100 characters');
const hookUrl = (example: string) =>
  z
    .url({ protocol: /^https?$/, error: `must be an http(s) URL, e.g. ${example}` })
    .max(2000, 'at most 2000 characters');

// Strict objects: a field that does not belong to the kind (a --host on a webhook) is refused, not dropped.
const DEFAULT_PORT: Record<SmtpSecurity, number> = { tls: 465, starttls: 587, none: 25 };

export const webhookChannelInput = z.strictObject({
  kind: z.literal('webhook'),
  name,
  url: hookUrl('https://example.com/hooks/ampsignal').describe('receives a JSON POST per alert; stored encrypted'),
});

export const slackChannelInput = z.strictObject({
  kind: z.literal('slack'),
  name,
  url: hookUrl('https://hooks.slack.com/services/T…/B…/…').describe(
    'a Slack (or Slack-compatible) incoming-webhook URL; stored encrypted',
  ),
});

export const emailChannelInput = z
  .strictObject({
    kind: z.literal('email'),
    name,
    host: z
      .string()
      .trim()
      .min(1, 'the SMTP host is required')
      .max(253)
      .regex(/^[^\s/:@]+$/, 'must be a host name or address, e.g. smtp.example.com'),
    port: z
      .number({ error: 'must be a port number' })
      .int('must be a whole number')
      .min(1, 'must be 1-65535')
      .max(65535, 'must be 1-65535')
      .optional()
      .describe('default: 465 for tls, 587 for starttls, 25 for none'),
    security: z
      .enum(SMTP_SECURITY, { error: `must be one of ${SMTP_SECURITY.join(', ')}` })
      .optional()
      .describe('default: tls on port 465, else starttls'),
    user: z.string().trim().min(1, 'must not be empty').max(500).optional(),
    password: z.string().min(1, 'must not be empty').max(1000).optional().describe('stored encrypted'),
    from: z.email({ error: 'must be an e-mail address' }),
    to: z
      .array(z.email({ error: 'must be an e-mail address' }), { error: 'must be a list of e-mail addresses' })
      .min(1, 'at least one recipient is required')
      .max(50, 'at most 50 recipients'),
  })
  .superRefine((v, c) => {
    if (v.password !== undefined && v.user === undefined)
      c.addIssue({ code: 'custom', path: ['user'], message: 'a password needs a user name' });
  });

export const channelInputSchema = z.discriminatedUnion(
  'kind',
  [webhookChannelInput, slackChannelInput, emailChannelInput],
  {
    error: `kind must be one of ${CHANNEL_KINDS.join(', ')}`,
  },
);
export type ChannelInput = z.output<typeof channelInputSchema>;

/** What is stored in the clear and shown: never the URL's path or query, never the password. */
export type ChannelSettings = { url: string } | EmailSettings;

/** `https://hooks.slack.com/…`: enough to recognise the receiver, nothing of its token. */
export function urlHint(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}/…`;
}

/** The row to store: settings in the clear (with the URL reduced to a hint), the secret encrypted. */
export function channelRow(
  input: ChannelInput,
  secrets: SecretBox,
): Pick<AlertChannelsTable, 'kind' | 'name' | 'settings' | 'secret_enc'> {
  if (input.kind === 'email') {
    const security = input.security ?? (input.port === 465 ? 'tls' : 'starttls');
    const settings: EmailSettings = {
      host: input.host,
      port: input.port ?? DEFAULT_PORT[security],
      security,
      user: input.user ?? null,
      from: input.from,
      to: input.to,
    };
    return {
      kind: 'email',
      name: input.name,
      settings: JSON.stringify(settings),
      secret_enc: input.password === undefined ? null : secrets.encrypt(input.password),
    };
  }
  return {
    kind: input.kind,
    name: input.name,
    settings: JSON.stringify({ url: urlHint(input.url) }),
    secret_enc: secrets.encrypt(input.url),
  };
}

export function channelSettings(row: Pick<AlertChannelsTable, 'settings'>): ChannelSettings {
  return JSON.parse(row.settings) as ChannelSettings;
}

/** Sends one message to the channel a row describes; failures are catalogue errors (kind decides retry). */
export async function sendToChannel(
  row: Pick<AlertChannelsTable, 'kind' | 'settings' | 'secret_enc'>,
  secrets: SecretBox,
  m: AlertMessage,
  signal?: AbortSignal,
): Promise<void> {
  const secret = row.secret_enc === null ? null : secrets.decrypt(row.secret_enc);
  switch (row.kind) {
    case 'webhook':
    case 'slack': {
      if (secret === null) throw new AmpError('internal', `channel has no stored URL`);
      return row.kind === 'webhook' ? sendWebhook(secret, m, signal) : sendSlack(secret, m, signal);
    }
    case 'email':
      return sendEmail(channelSettings(row) as EmailSettings, secret, m, signal);
    default:
      throw new AmpError('internal', `unknown alert channel kind "${row.kind}"`);
  }
}
