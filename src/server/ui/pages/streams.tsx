import type { StreamActivity } from '../../../events/streams';
import type { StreamRead } from '../../api/queries';
import { SeriesChart } from '../charts';
import { Badge, type Column, fmtTime, Layout, Notice, Num, TableHead } from '../layout';
import {
  ConfirmPage,
  CopyField,
  DangerZone,
  Fact,
  Facts,
  FormPage,
  formFields,
  NameCell,
  ObjectPage,
  PostButton,
  SettingsCard,
  StatusReason,
} from '../parts';

const streamPath = (id: string, tail = '') => `/streams/${encodeURIComponent(id)}${tail}`;

export function StreamsTable(p: { streams: StreamRead[] }): JSX.Element {
  if (p.streams.length === 0) {
    return (
      <p class="card">
        No event stream yet. <a href="/streams/new">Add one</a> to forward OneSignal message events to Amplitude.
      </p>
    );
  }
  return (
    <div class="table-wrap">
      <table>
        <TableHead
          cols={[
            'Stream',
            'Status',
            ...['Received', 'Duplicates', 'Forwarded', 'Forwarded / min', 'Dead letters', 'Pending'].map(
              (label): Column => ({ label, num: true }),
            ),
          ]}
        />
        <tbody>
          {p.streams.map((s) => (
            <tr>
              <NameCell name={s.name} id={s.id} href={streamPath(s.id)} />
              <td>
                <Badge status={s.status} />
              </td>
              <Num n={s.received} />
              <Num n={s.duplicates} />
              <Num n={s.forwarded} />
              <Num n={s.forwarded_last_minute} />
              <td class="num">
                <a href={streamPath(s.id, '/dead-letters')}>{String(s.dead_lettered)}</a>
              </td>
              <Num n={s.pending} />
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function StreamsPage(p: { streams: StreamRead[]; notice?: string | undefined }): JSX.Element {
  return (
    <Layout title="Streams" nav="streams">
      <h1>Event streams (OneSignal → Amplitude)</h1>
      <Notice text={p.notice} />
      <p>
        <a class="button" href="/streams/new">
          Add event stream
        </a>
      </p>
      <StreamsTable streams={p.streams} />
    </Layout>
  );
}

export const STREAM_FORM_FIELDS = ['name', 'amplitude_api_key', 'region', 'amplitude_url', 'event_names'] as const;

const REGIONS = [
  { value: 'us', label: 'US (api2.amplitude.com)' },
  { value: 'eu', label: 'EU (api.eu.amplitude.com)' },
];

/** The overrides as the textarea shows them: one KIND=NAME a line. */
const eventNameText = (names: Record<string, string>) =>
  Object.entries(names)
    .map(([k, n]) => `${k}=${n}`)
    .join('\n');

function EventNamesField(p: { value?: string | undefined; error?: string | undefined }): JSX.Element {
  return (
    <div class={p.error ? 'field invalid' : 'field'}>
      <label for="f-event_names">Event name overrides (optional)</label>
      <textarea id="f-event_names" name="event_names" rows="3" aria-describedby="f-event_names-hint" safe>
        {p.value ?? ''}
      </textarea>
      <small id="f-event_names-hint">
        One KIND=NAME a line, e.g. <code>message.push.clicked=Push Opened</code>. Default names follow OneSignal's own
        Amplitude export ([Onesignal] Push Clicked, …).
      </small>
      {p.error ? (
        <p class="error" safe>
          {p.error}
        </p>
      ) : (
        ''
      )}
    </div>
  );
}

export interface StreamFormValues {
  name?: string | undefined;
  region?: string | undefined;
  amplitude_url?: string | undefined;
  event_names?: string | undefined;
}

export function NewStreamPage(p: {
  values: StreamFormValues;
  errors: Record<string, string>;
  formError?: string | undefined;
}): JSX.Element {
  const v = p.values;
  const e = p.errors;
  const f = formFields(v, e);
  return (
    <FormPage
      title="Add an event stream"
      nav="streams"
      action="/streams"
      submit="Save stream"
      formError={p.formError}
      intro={
        <p class="muted">
          A stream receives OneSignal's Event Stream webhooks (sent, delivered, clicked…) and forwards each event once
          to one Amplitude project. The next page gives what to paste into OneSignal.
        </p>
      }
    >
      <f.Input name="name" label="Name" required placeholder="Production pushes" />
      <f.Secret
        name="amplitude_api_key"
        label="Amplitude project API key"
        required
        hint="Stored encrypted; never shown again."
      />
      <f.Select name="region" label="Amplitude data region" options={REGIONS} initial="us" />
      <EventNamesField value={v.event_names} error={e.event_names} />
      <f.Input
        name="amplitude_url"
        label="HTTP V2 API URL (optional)"
        type="url"
        hint="Leave empty to use the region's address; set only for a proxy or the Amplitude emulator."
      />
    </FormPage>
  );
}

export function StreamPage(p: {
  stream: StreamRead;
  webhookUrl: string;
  bodyTemplate: string;
  eventNames: Record<string, string>;
  /** Only in the answer to the creation: the secret is shown once. */
  secret?: string | undefined;
  chart?: JSX.Element | undefined;
  notice?: string | undefined;
  error?: string | undefined;
  values?: StreamFormValues;
  errors?: Record<string, string>;
}): JSX.Element {
  const s = p.stream;
  const v = p.values ?? {
    name: s.name,
    region: s.region,
    amplitude_url: s.amplitude_url ?? '',
    event_names: eventNameText(p.eventNames),
  };
  const e = p.errors ?? {};
  const f = formFields(v, e);
  const overrides = Object.entries(p.eventNames);
  return (
    <ObjectPage
      title={`Stream ${s.name}`}
      heading={`Stream: ${s.name}`}
      nav="streams"
      back={{ href: '/streams', label: 'All streams' }}
      notice={p.notice}
      error={p.error}
    >
      <section class="card">
        <Facts>
          <Fact label="Id" code={s.id} />
          <Fact label="Status">
            <StatusReason status={s.status} reason={s.status_reason} />
          </Fact>
          <Fact label="Amplitude" text={`${s.amplitude_url ?? 'by region'} (${s.region})`} />
          <Fact
            label="Event names"
            text={overrides.length ? overrides.map(([k, n]) => `${k} → ${n}`).join('; ') : 'OneSignal export names'}
          />
          <Fact label="Created" text={fmtTime(s.created_at)} />
        </Facts>
        <div class="actions">
          {s.status === 'paused' ? (
            <PostButton action={streamPath(s.id, '/resume')} label="Resume forwarding" />
          ) : (
            <PostButton action={streamPath(s.id, '/pause')} label="Pause forwarding" secondary />
          )}
          <PostButton action={streamPath(s.id, '/forward')} label="Forward pending now" secondary />
        </div>
      </section>

      <h2>Events</h2>
      <dl class="counters">
        {(
          [
            ['Received', s.received],
            ['Duplicates', s.duplicates],
            ['Forwarded', s.forwarded],
            ['Forwarded last minute', s.forwarded_last_minute],
            ['Dead letters', s.dead_lettered],
            ['Pending', s.pending],
          ] as const
        ).map(([label, n]) => (
          <div>
            <dt safe>{label}</dt>
            <dd>
              {label === 'Dead letters' ? <a href={streamPath(s.id, '/dead-letters')}>{String(n)}</a> : String(n)}
            </dd>
          </div>
        ))}
      </dl>
      {p.chart ?? ''}

      <section class="card" aria-labelledby="setup-title">
        <h2 id="setup-title">Set-up in OneSignal</h2>
        <p>
          In OneSignal, open Data › Event Streams › New Event Stream, choose the message events to forward, set the
          method to <code>POST</code>, and paste:
        </p>
        <CopyField id="stream-url" label="URL" value={p.webhookUrl} />
        {p.secret ? (
          <CopyField
            id="stream-header"
            label="Header"
            value={`Authorization: Bearer ${p.secret}`}
            hint="Shown once, now: copy it before leaving this page."
          />
        ) : (
          <p>
            <span class="copy-label">Header</span>
            <br />
            <code>Authorization: Bearer &lt;the secret shown when the stream was added&gt;</code>
          </p>
        )}
        <CopyField id="stream-content-type" label="Second header" value="Content-Type: application/json" />
        <details>
          <summary>Body (paste exactly)</summary>
          <div class="copy-row">
            <button type="button" class="secondary small" data-copy="stream-body" aria-label="Copy Body">
              Copy
            </button>
          </div>
          <pre id="stream-body" safe>
            {p.bodyTemplate}
          </pre>
        </details>
      </section>

      <SettingsCard action={streamPath(s.id, '/edit')}>
        <f.Input name="name" label="Name" required />
        <f.Secret
          name="amplitude_api_key"
          label="New Amplitude project API key"
          hint="Leave empty to keep the current key. A stream paused for a refused key resumes once Amplitude accepts the new one."
        />
        <f.Select name="region" label="Amplitude data region" options={REGIONS} />
        <EventNamesField value={v.event_names} error={e.event_names} />
        <f.Input name="amplitude_url" label="HTTP V2 API URL" type="url" hint="Empty: the region's address." />
      </SettingsCard>
      <DangerZone noun="stream" href={streamPath(s.id, '/delete')}>
        <p>
          Deleting the stream drops the events it has not forwarded and its dead letters; OneSignal's posts then get
          404.
        </p>
      </DangerZone>
    </ObjectPage>
  );
}

export function DeleteStreamPage(p: { stream: StreamRead; error?: string | undefined }): JSX.Element {
  const s = p.stream;
  return (
    <ConfirmPage
      title={`Delete stream ${s.name}?`}
      nav="streams"
      action={streamPath(s.id, '/delete')}
      confirmLabel="Delete stream"
      cancelHref={streamPath(s.id)}
      danger
      error={p.error}
    >
      <ul>
        <li safe>{`${s.pending} event(s) not yet forwarded are dropped, and ${s.dead_lettered} dead letter(s).`}</li>
        <li>Events already forwarded stay in Amplitude.</li>
        <li>Remove its Event Stream in OneSignal too: its posts will be answered 404.</li>
      </ul>
    </ConfirmPage>
  );
}

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

export function ActivityChart(p: { activity: StreamActivity }): JSX.Element {
  const a = p.activity;
  return (
    <section class="card" aria-labelledby="activity-title">
      <h2 id="activity-title">Events per minute, last hour (UTC)</h2>
      <SeriesChart
        title="Events received and forwarded per minute, last hour"
        xLabels={a.minutes.map(hhmm)}
        empty="No minutes to show."
        series={[
          { label: 'Received', cls: 's-received', kind: 'line', values: a.received },
          { label: 'Forwarded', cls: 's-forwarded', kind: 'line', values: a.forwarded },
        ]}
      />
    </section>
  );
}
