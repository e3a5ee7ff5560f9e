import type { RuleView } from '../../../app/alert-rules';
import type { AlertView, ChannelView } from '../../../app/alerts';
import {
  ALERT_KINDS,
  type AlertSettings,
  defaultThreshold,
  isThresholdKind,
  THRESHOLDS,
} from '../../../jobs/alert-conditions';
import { Badge, Field, fmtTime, Layout, Notice, TableHead } from '../layout';
import { SelectField } from '../parts';

/** Alerts: where they go (channels: list, add, test, delete), what is open now, and the rules that open them. */

export interface ChannelFormValues {
  kind?: string;
  name?: string;
  url?: string;
  host?: string;
  port?: string;
  security?: string;
  user?: string;
  from?: string;
  to?: string;
}

const KIND_LABEL: Record<string, string> = {
  webhook: 'JSON webhook',
  slack: 'Slack incoming webhook',
  email: 'E-mail (SMTP)',
};

function where(c: ChannelView): string {
  const s = c.settings as Record<string, unknown>;
  if (c.kind === 'email') return `${String(s.to)} via ${String(s.host)}:${String(s.port)} (${String(s.security)})`;
  return String(s.url ?? '');
}

function pct(x: number): string {
  return `${Math.round(x * 10) / 10}%`;
}

/** The conditions and their thresholds, as this process reads them from the environment. */
function Conditions(p: { settings: AlertSettings }): JSX.Element {
  const s = p.settings;
  const rules: Array<[string, string]> = [
    ['Run failed', "a sync's last run failed; clears when a later run completes"],
    ['Run held for approval', 'the guard held a run; the alert carries the approve link'],
    ['Destination or stream paused', "with the vendor's message (a refused key)"],
    ['Dead letters', `a stream holds more than ${s.deadLetters} (AMPSIGNAL_ALERT_DEAD_LETTERS)`],
    [
      'Download budget',
      `a source used ${pct(s.budgetPercent)} of this month's cohort downloads (AMPSIGNAL_ALERT_BUDGET_PERCENT)`,
    ],
    [
      'Real-time sync silent',
      `no cohort webhook for ${Math.round(s.realtimeSilenceMs / 60_000)} min (AMPSIGNAL_ALERT_REALTIME_SILENCE_MINUTES)`,
    ],
    [
      'Read-back drift',
      `the last sync verify matched fewer than ${pct(100 - s.driftPercent)} of its sample (AMPSIGNAL_ALERT_DRIFT_PERCENT)`,
    ],
  ];
  return (
    <>
      <table>
        <TableHead cols={['Condition', 'Alerts when']} />
        <tbody>
          {rules.map(([name, when]) => (
            <tr>
              <td safe>{name}</td>
              <td safe>{when}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p class="muted">
        These are the defaults; a rule below may set its own threshold for dead letters, the download budget, real-time
        silence or drift, and its channel then hears at that line instead.
      </p>
    </>
  );
}

function ChannelForm(p: { values: ChannelFormValues; errors: Record<string, string> }): JSX.Element {
  const v = p.values;
  const e = p.errors;
  return (
    <form class="stack" method="post" action="/alerts/channels" novalidate>
      <SelectField
        name="kind"
        label="Kind"
        value={v.kind ?? 'webhook'}
        error={e.kind}
        options={Object.entries(KIND_LABEL).map(([value, label]) => ({ value, label }))}
      />
      <Field name="name" label="Channel name" value={v.name} error={e.name} required placeholder="ops" />
      <fieldset>
        <legend>Webhook or Slack</legend>
        <Field
          name="url"
          label="Webhook URL"
          value={v.url}
          error={e.url}
          autocomplete="off"
          hint="Stored encrypted; only its origin is shown again."
        />
      </fieldset>
      <fieldset>
        <legend>E-mail</legend>
        <Field name="host" label="SMTP host" value={v.host} error={e.host} placeholder="smtp.example.com" />
        <Field name="port" label="SMTP port" value={v.port} error={e.port} hint="Default 465 for tls, else 587." />
        <SelectField
          name="security"
          label="Security"
          value={v.security ?? ''}
          error={e.security}
          options={[
            { value: '', label: 'default' },
            { value: 'starttls', label: 'STARTTLS' },
            { value: 'tls', label: 'TLS' },
            { value: 'none', label: 'none (local relay only)' },
          ]}
        />
        <Field name="user" label="SMTP user" value={v.user} error={e.user} autocomplete="off" />
        <Field
          name="password"
          label="SMTP password"
          type="password"
          error={e.password}
          autocomplete="off"
          hint="Stored encrypted; never shown again."
        />
        <Field name="from" label="From" value={v.from} error={e.from} placeholder="ampsignal@example.com" />
        <Field name="to" label="To" value={v.to} error={e.to} hint="One or more addresses, comma-separated." />
      </fieldset>
      <div class="actions">
        <button type="submit">Add channel</button>
      </div>
    </form>
  );
}

/** A rule's threshold as the table shows it: its own, or the default it follows; none for kinds without one. */
function thresholdText(r: RuleView, s: AlertSettings): string {
  if (!isThresholdKind(r.kind)) return '—';
  const unit = THRESHOLDS[r.kind].unit;
  const show = (n: number) => `${n}${unit === '%' ? '%' : ` ${unit}`}`;
  return r.threshold === null ? `default (${show(defaultThreshold(r.kind, s))})` : show(r.threshold);
}

const THRESHOLD_HINT = `for ${Object.entries(THRESHOLDS)
  .map(([k, t]) => `${k} (${t.unit})`)
  .join(', ')}; empty: the default`;

function RulesSection(p: {
  rules: RuleView[];
  channels: ChannelView[];
  settings: AlertSettings;
  ruleError?: string | undefined;
}): JSX.Element {
  return (
    <>
      <p class="muted">
        A channel without rules hears every kind of alert; once it has rules, only the kinds they name.
      </p>
      {p.rules.length === 0 ? (
        <p class="card">No rules: every channel hears every kind of alert.</p>
      ) : (
        <table>
          <TableHead cols={['Channel', 'Hears', 'Threshold', '']} />
          <tbody>
            {p.rules.map((r) => {
              const path = `/alerts/rules/${encodeURIComponent(r.id)}`;
              const label = `${r.kind} alerts to ${r.channel_name}`;
              return (
                <tr>
                  <td safe>{r.channel_name}</td>
                  <td>
                    <code safe>{r.kind}</code>
                  </td>
                  <td safe>{thresholdText(r, p.settings)}</td>
                  <td>
                    <div class="actions">
                      <form method="post" action={`${path}/test`}>
                        <button
                          type="submit"
                          class="secondary"
                          hx-post={`${path}/test`}
                          hx-target={`#test-${r.id}`}
                          hx-swap="innerHTML"
                          aria-label={`Test rule: ${label}`}
                        >
                          Send test
                        </button>
                      </form>
                      <a class="button secondary" href={`${path}/delete`} aria-label={`Delete rule: ${label}`}>
                        Delete
                      </a>
                    </div>
                    <div id={`test-${r.id}`} aria-live="polite"></div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {p.channels.length === 0 ? (
        ''
      ) : (
        <section class="card">
          <form class="inline-form" method="post" action="/alerts/rules">
            <SelectField
              name="rule_channel"
              label="Rule: channel"
              options={p.channels.map((c) => ({ value: c.id, label: c.name }))}
            />
            <SelectField name="rule_kind" label="hears" options={ALERT_KINDS} error={p.ruleError} />
            <Field name="rule_threshold" label="at threshold (optional)" hint={THRESHOLD_HINT} />
            <button type="submit">Add rule</button>
          </form>
        </section>
      )}
    </>
  );
}

export function AlertsPage(p: {
  rules: RuleView[];
  ruleError?: string | undefined;
  channels: ChannelView[];
  alerts: AlertView[];
  settings: AlertSettings;
  values?: ChannelFormValues;
  errors?: Record<string, string>;
  notice?: string | undefined;
  error?: string | undefined;
}): JSX.Element {
  return (
    <Layout title="Alerts" nav="alerts">
      <h1>Alerts</h1>
      <Notice text={p.notice} />
      <Notice kind="alert" text={p.error} />
      <h2>Channels</h2>
      {p.channels.length === 0 ? (
        <p class="card">No channel yet: alerts are kept here but sent nowhere. Add one below.</p>
      ) : (
        <table>
          <TableHead cols={['Name', 'Kind', 'Sends to', 'Added', '']} />
          <tbody>
            {p.channels.map((c) => {
              const path = `/alerts/channels/${encodeURIComponent(c.id)}`;
              return (
                <tr>
                  <td safe>{c.name}</td>
                  <td safe>{KIND_LABEL[c.kind] ?? c.kind}</td>
                  <td>
                    <code safe>{where(c)}</code>
                  </td>
                  <td safe>{fmtTime(c.created_at)}</td>
                  <td>
                    <div class="actions">
                      <form method="post" action={`${path}/test`}>
                        <button
                          type="submit"
                          class="secondary"
                          hx-post={`${path}/test`}
                          hx-target={`#test-${c.id}`}
                          hx-swap="innerHTML"
                          aria-label={`Send a test alert to ${c.name}`}
                        >
                          Send test
                        </button>
                      </form>
                      <a class="button secondary" href={`${path}/delete`} aria-label={`Delete ${c.name}`}>
                        Delete
                      </a>
                    </div>
                    <div id={`test-${c.id}`} aria-live="polite"></div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <h2>Add a channel</h2>
      <section class="card">
        <ChannelForm values={p.values ?? {}} errors={p.errors ?? {}} />
      </section>
      <h2>Open alerts</h2>
      {p.alerts.length === 0 ? (
        <p class="card">Nothing is wrong right now.</p>
      ) : (
        <table>
          <TableHead cols={['Opened', 'Alert', 'Status', 'Notifications']} />
          <tbody>
            {p.alerts.map((a) => (
              <tr>
                <td safe>{fmtTime(a.opened_at)}</td>
                <td>
                  <strong safe>{a.title}</strong>
                  <br />
                  <span class="muted" safe>
                    {a.message}
                  </span>
                </td>
                <td>
                  <Badge status={a.status} />
                </td>
                <td
                  safe
                >{`${a.notifications.sent} sent, ${a.notifications.pending} pending, ${a.notifications.failed} failed`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Rules</h2>
      <RulesSection rules={p.rules} channels={p.channels} settings={p.settings} ruleError={p.ruleError} />
      <h2>Conditions</h2>
      <p class="muted">
        Looked at every minute by the scheduler. Each channel hears once when a condition appears and once when it
        clears.
      </p>
      <Conditions settings={p.settings} />
    </Layout>
  );
}

export function ChannelTestOutcome(p: { ok: boolean; message: string }): JSX.Element {
  return (
    <p class={p.ok ? 'result ok' : 'result bad'} role="status" safe>
      {p.ok ? `Test sent: ${p.message}` : `Test failed: ${p.message}`}
    </p>
  );
}
