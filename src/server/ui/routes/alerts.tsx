import { addRule, deleteRule, listRules, testRule } from '../../../app/alert-rules';
import { addChannel, deleteChannel, getChannel, listAlerts, listChannels, testChannel } from '../../../app/alerts';
import { channelInputSchema } from '../../../connectors/notify/channels';
import { AmpError, toAmpError } from '../../../errors';
import { alertSettings } from '../../../jobs/alert-conditions';
import type { Context } from '../../../store';
import { type Form, fieldErrors, formOf, html, isHtmx, parseId, queryOf, type UiRoutes } from '../http';
import { AlertsPage, type ChannelFormValues, ChannelTestOutcome } from '../pages/alerts';
import { ConfirmPage } from '../parts';

const NOTICES: Record<string, string> = {
  added: 'Channel added. Send it a test to check it reaches you.',
  deleted: 'Channel deleted.',
  'rule-added': 'Rule added: that channel now hears only the kinds its rules name.',
  'rule-deleted': 'Rule deleted.',
};

async function alertsPage(
  ctx: Context,
  extra: {
    values?: ChannelFormValues;
    errors?: Record<string, string>;
    notice?: string | undefined;
    error?: string | undefined;
    ruleError?: string | undefined;
  } = {},
) {
  const [channels, alerts, rules] = await Promise.all([
    listChannels(ctx),
    listAlerts(ctx, { status: 'open' }),
    listRules(ctx),
  ]);
  let settings: ReturnType<typeof alertSettings>;
  try {
    settings = alertSettings();
  } catch (e) {
    throw new AmpError('internal', toAmpError(e).message);
  }
  return <AlertsPage rules={rules} channels={channels} alerts={alerts} settings={settings} {...extra} />;
}

const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** Form strings → the channel input of its kind: fields of the other kinds are left out, not refused. */
function channelInput(form: Form): Record<string, unknown> {
  const kind = form.kind ?? '';
  const base = { kind, name: form.name ?? '' };
  if (kind !== 'email') return { ...base, url: form.url ?? '' };
  const port = blank(form.port);
  return {
    ...base,
    host: form.host ?? '',
    ...(port === undefined ? {} : { port: /^\d+$/.test(port) ? Number(port) : port }),
    ...(blank(form.security) ? { security: blank(form.security) } : {}),
    ...(blank(form.user) ? { user: blank(form.user) } : {}),
    ...(form.password ? { password: form.password } : {}),
    from: form.from ?? '',
    to: (form.to ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

export const alertRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/alerts', async (req, reply) => {
    const done = queryOf(req).done;
    return html(reply, await alertsPage(ctx, { notice: done ? NOTICES[done] : undefined }));
  });

  ui.post('/alerts/channels', async (req, reply) => {
    const form = formOf(req);
    const values: ChannelFormValues = {
      kind: form.kind,
      name: form.name,
      url: form.url,
      host: form.host,
      port: form.port,
      security: form.security,
      user: form.user,
      from: form.from,
      to: form.to,
    };
    const input = channelInput(form);
    const parsed = channelInputSchema.safeParse(input);
    if (!parsed.success) return html(reply, await alertsPage(ctx, { values, errors: fieldErrors(parsed.error) }), 400);
    try {
      await addChannel(ctx, input);
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal') throw err;
      const errors: Record<string, string> = err.code === 'conflict' ? { name: err.message } : {};
      return html(
        reply,
        await alertsPage(ctx, { values, errors, error: err.code === 'conflict' ? undefined : err.message }),
        err.httpStatus,
      );
    }
    return reply.redirect('/alerts?done=added', 303);
  });

  ui.post('/alerts/channels/:id/test', async (req, reply) => {
    const r = await testChannel(ctx, parseId(req));
    if (isHtmx(req)) return html(reply, <ChannelTestOutcome ok={r.ok} message={r.message} />);
    return html(reply, await alertsPage(ctx, r.ok ? { notice: r.message } : { error: `Test failed: ${r.message}` }));
  });

  ui.get('/alerts/channels/:id/delete', async (req, reply) => {
    const c = await getChannel(ctx, parseId(req));
    return html(
      reply,
      <ConfirmPage
        title={`Delete channel ${c.name}?`}
        nav="alerts"
        action={`/alerts/channels/${encodeURIComponent(c.id)}/delete`}
        confirmLabel="Delete channel"
        cancelHref="/alerts"
        danger
      >
        <p safe>{`Alerts will no longer be sent to ${c.name}; what was still to be sent to it is dropped.`}</p>
      </ConfirmPage>,
    );
  });

  ui.post('/alerts/rules', async (req, reply) => {
    const form = formOf(req);
    try {
      const threshold = form.rule_threshold?.trim();
      await addRule(ctx, {
        channel: form.rule_channel ?? '',
        kind: form.rule_kind ?? '',
        ...(threshold ? { threshold: Number.isFinite(Number(threshold)) ? Number(threshold) : threshold } : {}),
      });
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal') throw err;
      return html(reply, await alertsPage(ctx, { ruleError: err.message }), err.httpStatus);
    }
    return reply.redirect('/alerts?done=rule-added', 303);
  });

  ui.post('/alerts/rules/:id/test', async (req, reply) => {
    const r = await testRule(ctx, parseId(req));
    if (isHtmx(req)) return html(reply, <ChannelTestOutcome ok={r.ok} message={r.message} />);
    return html(reply, await alertsPage(ctx, r.ok ? { notice: r.message } : { error: `Test failed: ${r.message}` }));
  });

  ui.get('/alerts/rules/:id/delete', async (req, reply) => {
    const id = parseId(req);
    const rule = (await listRules(ctx)).find((r) => r.id === id);
    if (!rule) throw new AmpError('not_found', `no alert rule "${id}"`);
    return html(
      reply,
      <ConfirmPage
        title={`Delete the rule sending ${rule.kind} alerts to ${rule.channel_name}?`}
        nav="alerts"
        action={`/alerts/rules/${encodeURIComponent(rule.id)}/delete`}
        confirmLabel="Delete rule"
        cancelHref="/alerts"
        danger
      >
        <p safe>{`Once it has no rules left, ${rule.channel_name} hears every kind of alert again.`}</p>
      </ConfirmPage>,
    );
  });

  ui.post('/alerts/rules/:id/delete', async (req, reply) => {
    await deleteRule(ctx, parseId(req));
    return reply.redirect('/alerts?done=rule-deleted', 303);
  });

  ui.post('/alerts/channels/:id/delete', async (req, reply) => {
    await deleteChannel(ctx, parseId(req));
    return reply.redirect('/alerts?done=deleted', 303);
  });
};
