import { CADENCES } from '../../sync/cadence';
import type {
  CohortRead,
  DeadLetterRead,
  DestinationRead,
  RunRead,
  RunRecordRead,
  StreamRead,
  SyncRead,
} from '../api/queries';
import { Badge, Field, fmtTime, Layout, Notice, Num } from './layout';

export function LoginPage(p: { next: string; error?: string }): JSX.Element {
  return (
    <Layout title="Sign in" nav="none" signedIn={false}>
      <h1>Sign in</h1>
      <section class="card">
        <form class="stack" method="post" action="/login">
          <input type="hidden" name="next" value={p.next} />
          <Field
            name="token"
            label="Admin token"
            type="password"
            required
            autocomplete="current-password"
            hint="The value of AMPSIGNAL_ADMIN_TOKEN on the server."
            error={p.error}
          />
          <div class="actions">
            <button type="submit">Sign in</button>
          </div>
        </form>
      </section>
    </Layout>
  );
}

export function NoTokenPage(p: { help: string }): JSX.Element {
  return (
    <Layout title="Admin disabled" nav="none" signedIn={false}>
      <h1>The admin UI is disabled</h1>
      <section class="card">
        <p safe>{p.help}</p>
      </section>
    </Layout>
  );
}

export function ErrorPage(p: { title: string; message: string }): JSX.Element {
  return (
    <Layout title={p.title} nav="none">
      <h1 safe>{p.title}</h1>
      <Notice kind="alert" text={p.message} />
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </Layout>
  );
}

type Column = string | { label: string; num: true };

/** A table's header row; numeric columns are right-aligned like their cells. */
function TableHead(p: { cols: Column[] }): JSX.Element {
  return (
    <thead>
      <tr>
        {p.cols.map((c) =>
          typeof c === 'string' ? (
            <th scope="col" safe>
              {c}
            </th>
          ) : (
            <th scope="col" class="num" safe>
              {c.label}
            </th>
          ),
        )}
      </tr>
    </thead>
  );
}

function RunLink(p: { sync: SyncRead }): JSX.Element {
  const r = p.sync.last_run;
  if (!r) return <span class="muted">never run</span>;
  return (
    <a href={`/runs/${encodeURIComponent(r.id)}`}>
      <Badge status={r.status} />{' '}
      <span class="muted" safe>
        {fmtTime(r.started_at)}
      </span>
    </a>
  );
}

export function OverviewPage(p: {
  destinations: DestinationRead[];
  syncs: SyncRead[];
  streams: StreamRead[];
}): JSX.Element {
  return (
    <Layout title="Overview" nav="overview">
      <h1>Overview</h1>
      <h2>Destinations</h2>
      {p.destinations.length === 0 ? (
        <p class="card">
          No destination yet. <a href="/catalog">Add one from the catalog</a>.
        </p>
      ) : (
        <table>
          <TableHead cols={['Name', 'OneSignal app id', 'Status', { label: 'Pending rows', num: true }]} />
          <tbody>
            {p.destinations.map((d) => (
              <tr>
                <td safe>{d.name}</td>
                <td>
                  <code safe>{d.app_id}</code>
                </td>
                <td>
                  <Badge status={d.status} />
                  {d.status_reason ? <span class="muted" safe>{` ${d.status_reason}`}</span> : ''}
                </td>
                <Num n={d.pending_rows} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Syncs</h2>
      {p.syncs.length === 0 ? (
        <p class="card">
          No sync yet. <a href="/cohorts">Pick a cohort to sync</a>.
        </p>
      ) : (
        <table>
          <TableHead cols={['Cohort', 'Destination', 'Cadence', 'Last run', 'Details']} />
          <tbody>
            {p.syncs.map((s) => (
              <tr>
                <td safe>{s.cohort_name ?? s.cohort_id}</td>
                <td safe>{s.destination_name ?? s.destination_id}</td>
                <td safe>{s.cadence}</td>
                <td>
                  <RunLink sync={s} />
                </td>
                <td>
                  <a href={`/syncs/${encodeURIComponent(s.id)}`}>Run history</a>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Event streams</h2>
      <StreamsTable streams={p.streams} />
    </Layout>
  );
}

export function CatalogPage(p: { oneSignal: { name: string; description: string } }): JSX.Element {
  return (
    <Layout title="Catalog" nav="catalog">
      <h1>Catalog</h1>
      <div class="cards">
        <section class="card" aria-labelledby="cat-onesignal">
          <h2 id="cat-onesignal" safe>
            {`${p.oneSignal.name} (destination)`}
          </h2>
          <p safe>{p.oneSignal.description}</p>
          <a class="button" href="/destinations/new">
            Add OneSignal destination
          </a>
        </section>
        <section class="card" aria-labelledby="cat-amplitude">
          <h2 id="cat-amplitude">Amplitude (source)</h2>
          <p>
            Discover Amplitude cohorts (Behavioral Cohorts API) or receive them in real time through Amplitude's cohort
            webhook. Sources hold a project's API and secret keys, so they are added from the command line:
          </p>
          <p>
            <code>ampsignal source add --name … --region us --api-key … --secret-key …</code>
          </p>
          <p>
            Cohorts imported from a file need no source: <code>ampsignal cohort import</code>.
          </p>
        </section>
      </div>
    </Layout>
  );
}

export interface DestinationFormValues {
  name?: string;
  app_id?: string;
  api_url?: string;
  external_id_property?: string;
  tag_key_template?: string;
  max_tags_per_user?: string;
}

export function NewDestinationPage(p: {
  values: DestinationFormValues;
  errors: Record<string, string>;
  formError?: string;
}): JSX.Element {
  const v = p.values;
  const e = p.errors;
  return (
    <Layout title="Add OneSignal destination" nav="catalog">
      <h1>Add a OneSignal destination</h1>
      <Notice kind="alert" text={p.formError} />
      <section class="card">
        <form class="stack" method="post" action="/destinations" novalidate>
          <Field name="name" label="Name" value={v.name} error={e.name} required placeholder="Production app" />
          <Field
            name="app_id"
            label="OneSignal App ID"
            value={v.app_id}
            error={e.app_id}
            required
            hint="Settings > Keys & IDs in the OneSignal dashboard."
          />
          <Field
            name="api_key"
            label="App API key"
            type="password"
            autocomplete="off"
            error={e.api_key}
            required
            hint="Stored encrypted; never shown again."
          />
          <Field
            name="external_id_property"
            label="Identity mapping: Amplitude property used as OneSignal external_id"
            value={v.external_id_property ?? 'user_id'}
            error={e.external_id_property}
          />
          <Field
            name="tag_key_template"
            label="Tag key template"
            value={v.tag_key_template ?? 'amp_cohort_{cohort_id}'}
            error={e.tag_key_template}
            hint="Must contain {cohort_id}."
          />
          <Field
            name="max_tags_per_user"
            label="Max cohort tags per user (plan budget)"
            type="number"
            value={v.max_tags_per_user ?? '10'}
            error={e.max_tags_per_user}
          />
          <Field
            name="api_url"
            label="API base URL"
            type="url"
            value={v.api_url ?? 'https://api.onesignal.com'}
            error={e.api_url}
            hint="Change only for a proxy or the OneSignal emulator."
          />
          <div class="actions">
            <button
              type="button"
              class="secondary"
              hx-post="/destinations/test"
              hx-include="closest form"
              hx-target="#test-result"
              hx-swap="innerHTML"
            >
              Test connection
            </button>
            <button type="submit">Save destination</button>
            <span class="htmx-indicator muted">testing…</span>
          </div>
          <div id="test-result" aria-live="polite"></div>
        </form>
      </section>
    </Layout>
  );
}

export function TestResult(p: { ok: boolean; message: string }): JSX.Element {
  return (
    <p class={p.ok ? 'result ok' : 'result bad'} role="status" safe>
      {p.ok ? `Connection OK: ${p.message}` : `Connection failed: ${p.message}`}
    </p>
  );
}

export function CohortsPage(p: {
  cohorts: CohortRead[];
  destinations: DestinationRead[];
  syncs: SyncRead[];
  notice?: string;
  selectedDestination?: string;
  error?: { cohortId: string; field: string; message: string };
  values?: { cohort_id?: string; destination_id?: string; cadence?: string };
}): JSX.Element {
  return (
    <Layout title="Cohorts" nav="cohorts">
      <h1>Cohorts</h1>
      <Notice text={p.notice} />
      {p.destinations.length === 0 ? (
        <p class="notice">
          To sync a cohort, first <a href="/destinations/new">add a OneSignal destination</a>.
        </p>
      ) : (
        ''
      )}
      {p.cohorts.length === 0 ? (
        <p class="card">
          No cohorts yet. Discover them from an Amplitude source (<code>ampsignal cohort list --source …</code>) or
          import one from a file (<code>ampsignal cohort import</code>).
        </p>
      ) : (
        <table>
          <TableHead cols={['Cohort', 'Origin', { label: 'Size', num: true }, 'Syncs', 'Sync to OneSignal']} />
          <tbody>
            {p.cohorts.map((c, i) => {
              const err = p.error?.cohortId === c.id ? p.error : undefined;
              const mine = p.syncs.filter((s) => s.cohort_id === c.id);
              const chosenDest = (err && p.values?.destination_id) || p.selectedDestination;
              const chosenCadence = (err && p.values?.cadence) || 'manual';
              return (
                <tr>
                  <td>
                    <span safe>{c.name}</span>
                    <br />
                    <code class="muted" safe>
                      {c.id}
                    </code>
                  </td>
                  <td safe>{c.origin}</td>
                  <td class="num">{c.size === null ? '—' : String(c.size)}</td>
                  <td>
                    {mine.length === 0 ? (
                      <span class="muted">none</span>
                    ) : (
                      mine.map((s) => (
                        <div>
                          <a href={`/syncs/${encodeURIComponent(s.id)}`} safe>
                            {`→ ${s.destination_name ?? s.destination_id} (${s.cadence})`}
                          </a>
                        </div>
                      ))
                    )}
                  </td>
                  <td>
                    {p.destinations.length === 0 ? (
                      <span class="muted">no destination</span>
                    ) : (
                      <form class="inline-form" method="post" action="/syncs" aria-label={`Sync cohort ${c.name}`}>
                        <input type="hidden" name="cohort_id" value={c.id} />
                        <div class={err?.field === 'destination_id' ? 'field invalid' : 'field'}>
                          <label for={`dest-${i}`}>Destination</label>
                          <select id={`dest-${i}`} name="destination_id">
                            {p.destinations.map((d) => (
                              <option value={d.id} selected={d.id === chosenDest} safe>
                                {d.name}
                              </option>
                            ))}
                          </select>
                        </div>
                        <div class={err?.field === 'cadence' ? 'field invalid' : 'field'}>
                          <label for={`cad-${i}`}>Cadence</label>
                          <select id={`cad-${i}`} name="cadence">
                            {CADENCES.map((k) => (
                              <option value={k} selected={k === chosenCadence}>
                                {k}
                              </option>
                            ))}
                          </select>
                        </div>
                        <button type="submit">Sync</button>
                        {err ? (
                          <p class="error" role="alert" safe>
                            {err.message}
                          </p>
                        ) : (
                          ''
                        )}
                      </form>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

const RUN_COUNTERS = [
  ['members', 'Members'],
  ['added', 'Added'],
  ['removed', 'Removed'],
  ['unchanged', 'Unchanged'],
  ['delivered', 'Delivered'],
  ['not_found', 'Not found'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
  ['skipped_anonymous', 'Skipped (no id)'],
  ['requests', 'Requests'],
] as const;

export function SyncPage(p: { sync: SyncRead; runs: RunRead[]; notice?: string; error?: string }): JSX.Element {
  const s = p.sync;
  const base = `/syncs/${encodeURIComponent(s.id)}`;
  return (
    <Layout title={`Sync ${s.cohort_name ?? s.cohort_id}`} nav="overview">
      <h1 safe>{`Sync: ${s.cohort_name ?? s.cohort_id} → ${s.destination_name ?? s.destination_id}`}</h1>
      <Notice text={p.notice} />
      <Notice kind="alert" text={p.error} />
      <section class="card">
        <table>
          <tbody>
            <tr>
              <th scope="row">Cadence</th>
              <td safe>{s.cadence}</td>
            </tr>
            <tr>
              <th scope="row">OneSignal tag key</th>
              <td>
                <code safe>{s.tag_key}</code>
              </td>
            </tr>
            <tr>
              <th scope="row">Segment</th>
              <td safe>{s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : '—')}</td>
            </tr>
            <tr>
              <th scope="row">Next scheduled run</th>
              <td safe>{fmtTime(s.next_run_at)}</td>
            </tr>
          </tbody>
        </table>
        <div class="actions">
          <form method="post" action={`${base}/run`}>
            <button type="submit">Run now</button>
          </form>
          <form method="post" action={`${base}/run`}>
            <input type="hidden" name="dry_run" value="true" />
            <button type="submit" class="secondary">
              Dry run
            </button>
          </form>
        </div>
      </section>
      <h2>Run history</h2>
      {p.runs.length === 0 ? (
        <p class="card">No runs yet.</p>
      ) : (
        <table>
          <TableHead
            cols={['Started', 'Status', 'Trigger', ...RUN_COUNTERS.map(([, label]): Column => ({ label, num: true }))]}
          />
          <tbody>
            {p.runs.map((r) => (
              <tr>
                <td>
                  <a href={`/runs/${encodeURIComponent(r.id)}`} safe>
                    {fmtTime(r.started_at)}
                  </a>
                </td>
                <td>
                  <Badge status={r.status} />
                  {r.dry_run ? <span class="muted"> (dry run)</span> : ''}
                </td>
                <td safe>{r.trigger}</td>
                {RUN_COUNTERS.map(([k]) => (
                  <Num n={r[k]} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

function SampleList(p: { title: string; items: unknown }): JSX.Element {
  if (!Array.isArray(p.items) || p.items.length === 0) return '';
  return (
    <div>
      <h3 safe>{p.title}</h3>
      <ul>
        {p.items.slice(0, 50).map((x) => (
          <li>
            <code safe>{String(x)}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}

export function RunPage(p: {
  run: RunRead;
  sync: SyncRead | null;
  records: RunRecordRead[];
  notice?: string;
  error?: string;
}): JSX.Element {
  const r = p.run;
  const base = `/runs/${encodeURIComponent(r.id)}`;
  const sample = (r.sample && typeof r.sample === 'object' ? r.sample : {}) as Record<string, unknown>;
  return (
    <Layout title={`Run ${r.id}`} nav="overview">
      <h1>
        Run <code safe>{r.id}</code> <Badge status={r.status} />
      </h1>
      <p>
        {p.sync ? (
          <a href={`/syncs/${encodeURIComponent(p.sync.id)}`} safe>
            {`← ${p.sync.cohort_name ?? p.sync.cohort_id} → ${p.sync.destination_name ?? p.sync.destination_id}`}
          </a>
        ) : (
          ''
        )}{' '}
        <span
          class="muted"
          safe
        >{`${r.trigger}${r.dry_run ? ', dry run' : ''}; started ${fmtTime(r.started_at)}, finished ${fmtTime(r.finished_at)}`}</span>
      </p>
      <Notice text={p.notice} />
      <Notice kind="alert" text={p.error} />
      {r.error ? <Notice kind="alert" text={`Run error: ${r.error}`} /> : ''}
      {r.status === 'held' ? (
        <section class="card" aria-labelledby="held-title">
          <h2 id="held-title">Held for approval</h2>
          <p safe>{r.hold_reason ?? 'This run would remove many members; it waits for a decision.'}</p>
          <div class="actions">
            <form method="post" action={`${base}/approve`}>
              <button type="submit">Approve and deliver</button>
            </form>
            <form method="post" action={`${base}/reject`}>
              <button type="submit" class="danger">
                Reject
              </button>
            </form>
          </div>
        </section>
      ) : (
        ''
      )}
      <h2>Counters</h2>
      <dl class="counters">
        {RUN_COUNTERS.map(([k, label]) => (
          <div>
            <dt safe>{label}</dt>
            <dd>{String(r[k])}</dd>
          </div>
        ))}
      </dl>
      <p class="muted">added + removed = delivered + not found + failed + pending</p>
      <SampleList title="Sample of additions" items={sample.adds} />
      <SampleList title="Sample of removals" items={sample.removes} />
      <h2>Failed and skipped records</h2>
      {r.skipped_anonymous > 0 ? (
        <p
          safe
        >{`${r.skipped_anonymous} member(s) were skipped because they have no value for the mapped id property (anonymous users).`}</p>
      ) : (
        ''
      )}
      {p.records.length === 0 ? (
        <p class="muted">No failed or not-found records.</p>
      ) : (
        <table>
          <TableHead cols={['External id', 'Change', 'Outcome', 'Reason', { label: 'Attempts', num: true }]} />
          <tbody>
            {p.records.map((x) => (
              <tr>
                <td>
                  <code safe>{x.external_id}</code>
                </td>
                <td safe>{x.change}</td>
                <td>
                  <Badge status={x.outcome} />
                </td>
                <td safe>
                  {x.error ??
                    (x.outcome === 'not_found' ? 'user not in OneSignal (retried at the next reconcile)' : '—')}
                </td>
                <Num n={x.attempts} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}

function StreamsTable(p: { streams: StreamRead[] }): JSX.Element {
  if (p.streams.length === 0) {
    return (
      <p class="card">
        No event stream yet. Create one with <code>ampsignal stream add</code>.
      </p>
    );
  }
  return (
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
            <td>
              <span safe>{s.name}</span>
              <br />
              <code class="muted" safe>
                {s.webhook_path}
              </code>
            </td>
            <td>
              <Badge status={s.status} />
            </td>
            <Num n={s.received} />
            <Num n={s.duplicates} />
            <Num n={s.forwarded} />
            <Num n={s.forwarded_last_minute} />
            <td class="num">
              <a href={`/streams/${encodeURIComponent(s.id)}/dead-letters`}>{String(s.dead_lettered)}</a>
            </td>
            <Num n={s.pending} />
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function StreamsPage(p: { streams: StreamRead[] }): JSX.Element {
  return (
    <Layout title="Streams" nav="streams">
      <h1>Event streams (OneSignal → Amplitude)</h1>
      <StreamsTable streams={p.streams} />
    </Layout>
  );
}

export function DeadLettersPage(p: { stream: StreamRead; letters: DeadLetterRead[] }): JSX.Element {
  return (
    <Layout title={`Dead letters of ${p.stream.name}`} nav="streams">
      <h1 safe>{`Dead letters: ${p.stream.name}`}</h1>
      <p>
        <a href="/streams">← All streams</a>
      </p>
      {p.letters.length === 0 ? (
        <p class="card">No dead letters: every event was forwarded or is still pending.</p>
      ) : (
        <table>
          <TableHead cols={['Received', 'OneSignal event id', 'Kind', 'Reason', { label: 'Attempts', num: true }]} />
          <tbody>
            {p.letters.map((d) => (
              <tr>
                <td safe>{fmtTime(d.received_at)}</td>
                <td>
                  <code safe>{d.event_id}</code>
                </td>
                <td safe>{d.kind}</td>
                <td safe>{d.reason ?? '—'}</td>
                <Num n={d.attempts} />
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}
