import type { Command } from 'commander';
import { z } from 'zod';
import {
  type AlertView,
  addChannel,
  type ChannelView,
  deleteChannel,
  evaluateNow,
  getChannel,
  listAlerts,
  listChannels,
  testChannel,
} from '../app/alerts';
import { AmpError } from '../errors';
import { registerRules } from './alert-rules';
import { emit, parseInput, withContext } from './output';

// Input fields as the flags a person typed, so a complaint names the flag to fix.
const FLAG_OF: Record<string, string> = {
  kind: '<kind>',
  name: '--name',
  url: '--url',
  host: '--host',
  port: '--port',
  security: '--security',
  user: '--user',
  password: '--password',
  from: '--from',
  to: '--to',
};

interface AddFlags {
  name?: string;
  url?: string;
  host?: string;
  port?: string;
  security?: string;
  user?: string;
  password?: string;
  from?: string;
  to?: string[];
  json?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

const port = z
  .string()
  .regex(/^\s*\d+\s*$/, 'must be a whole number')
  .transform((s) => Number(s.trim()))
  .optional();

function time(ms: number | null): string {
  return ms === null ? '-' : `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

function channelHuman(v: ChannelView): string {
  const s = v.settings;
  const lines = [`${v.id}  ${v.name}  (${v.kind})`];
  if ('url' in s) lines.push(`  url:   ${s.url}`);
  else {
    const login = s.user ? `, user ${s.user}${v.settings.password_set ? ' (password set)' : ''}` : '';
    lines.push(
      `  smtp:  ${s.host}:${s.port} (${s.security}${login})`,
      `  from:  ${s.from}`,
      `  to:    ${s.to.join(', ')}`,
    );
  }
  return lines.join('\n');
}

function alertHuman(a: AlertView): string {
  const n = a.notifications;
  return [
    `${a.id}  ${a.status.toUpperCase()}  since ${time(a.opened_at)}${a.resolved_at === null ? '' : `, resolved ${time(a.resolved_at)}`}`,
    `  ${a.title}`,
    `  ${a.message}`,
    ...(a.link ? [`  link: ${a.link}`] : []),
    `  condition ${a.condition}; notifications: ${n.sent} sent, ${n.pending} pending, ${n.failed} failed`,
  ].join('\n');
}

export function register(program: Command): void {
  const alert = program.command('alert');
  const channel = alert.command('channel').description('where alerts go: a JSON webhook, a Slack webhook, e-mail');
  registerRules(alert);

  channel
    .command('add')
    .description('add an alert channel (webhook | slack | email); its URL or password is stored encrypted')
    .argument('<kind>', 'webhook (a JSON POST per alert), slack (an incoming-webhook URL) or email (SMTP)')
    .option('--name <name>', 'a unique name, e.g. "ops-slack"')
    .option('--url <url>', 'webhook and slack: the URL to POST to (it may carry a token; never shown again)')
    .option('--host <host>', 'email: the SMTP server')
    .option('--port <n>', 'email: the SMTP port (default 465 for tls, 587 for starttls, 25 for none)')
    .option('--security <mode>', 'email: starttls (default), tls (port 465) or none (a trusted relay)')
    .option('--user <user>', 'email: the SMTP login')
    .option('--password <password>', 'email: the SMTP password (stored encrypted)')
    .option('--from <address>', 'email: the sender address')
    .option('--to <address...>', 'email: recipients; repeatable or comma-separated', collect)
    .option('--json', 'print JSON')
    .action(async (kind: string, flags: AddFlags, cmd: Command) => {
      const nums = parseInput(z.object({ port }), { port: flags.port });
      if (!flags.name) throw new AmpError('invalid_input', 'missing --name');
      const input = Object.fromEntries(
        Object.entries({
          kind,
          name: flags.name,
          url: flags.url,
          host: flags.host,
          port: nums.port,
          security: flags.security,
          user: flags.user,
          password: flags.password,
          from: flags.from,
          to: flags.to,
        }).filter(([, v]) => v !== undefined),
      );
      await withContext(cmd, async (ctx) => {
        const v = await addChannel(ctx, input, { label: (f) => FLAG_OF[f] ?? f });
        emit(
          flags.json,
          v,
          () => `added alert channel ${v.id}\n${channelHuman(v)}\nsend a sample: ampsignal alert test ${v.name}`,
        );
      });
    });

  channel
    .command('list')
    .description('list alert channels (never their URLs or passwords)')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const views = await listChannels(ctx);
        emit(flags.json, views, () =>
          views.length
            ? views.map(channelHuman).join('\n')
            : 'no alert channels yet: add one with `ampsignal alert channel add slack --name … --url …`',
        );
      });
    });

  channel
    .command('show')
    .description('show one alert channel')
    .argument('<channel>', 'channel id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await getChannel(ctx, ref);
        emit(flags.json, v, () => channelHuman(v));
      });
    });

  channel
    .command('delete')
    .description('delete an alert channel (and what was still to be sent to it)')
    .argument('<channel>', 'channel id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await deleteChannel(ctx, ref);
        emit(flags.json, v, () => `deleted alert channel ${v.id} (${v.name})`);
      });
    });

  alert
    .command('test')
    .description('send a sample alert to a channel now')
    .argument('<channel>', 'channel id or name')
    .option('--json', 'print JSON')
    .action(async (ref: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await testChannel(ctx, ref);
        if (!r.ok) {
          if (flags.json) emit(true, r, () => '');
          throw new AmpError('vendor_rejected', `the sample alert to ${r.name} was not delivered: ${r.message}`);
        }
        emit(flags.json, r, () => `ok: ${r.message} (${r.latency_ms} ms)`);
      });
    });

  alert
    .command('list')
    .description('list open alerts (newest first)')
    .option('--all', 'resolved alerts too')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--json', 'print JSON')
    .action(async (flags: { all?: boolean; limit?: string; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const alerts = await listAlerts(ctx, {
          status: flags.all ? 'all' : 'open',
          ...(flags.limit !== undefined ? { limit: flags.limit as unknown as number } : {}),
        });
        emit(flags.json, alerts, () =>
          alerts.length ? alerts.map(alertHuman).join('\n') : flags.all ? 'no alerts yet' : 'no open alerts',
        );
      });
    });

  alert
    .command('evaluate')
    .description('look at every alert condition now and send what is due (the worker does this every minute)')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await evaluateNow(ctx);
        emit(
          flags.json,
          r,
          () =>
            `${r.conditions} condition(s) present; opened ${r.opened.length}, resolved ${r.resolved.length}; ` +
            `notifications: ${r.sent} sent, ${r.retrying} to retry, ${r.failed} failed`,
        );
      });
    });
}
