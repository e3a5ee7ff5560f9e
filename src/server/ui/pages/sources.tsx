import type { SourceView } from '../../../connectors/amplitude/sources';
import type { CohortRead } from '../../api/queries';
import { fmtTime, Layout, Notice, TableHead } from '../layout';
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
  SettingsCard,
  TestButton,
  TestSlot,
} from '../parts';

/** A source with what its page and the list show besides the stored settings. */
export interface SourceRead extends SourceView {
  downloads_this_month: number;
  planned_downloads_per_month: number;
}

export interface SourceFormValues {
  name?: string | undefined;
  region?: string | undefined;
  api_url?: string | undefined;
  download_budget?: string | undefined;
}

export const SOURCE_EDIT_FIELDS = ['name', 'region', 'api_key', 'secret_key', 'download_budget', 'api_url'] as const;

const REGIONS = [
  { value: 'us', label: 'US (amplitude.com)' },
  { value: 'eu', label: 'EU (eu.amplitude.com)' },
];

const sourcePath = (id: string, tail = '') => `/sources/${encodeURIComponent(id)}${tail}`;

function Budget(p: { s: SourceRead }): JSX.Element {
  const over = p.s.planned_downloads_per_month > p.s.download_budget;
  return (
    <span
      class={over ? 'error' : undefined}
      safe
    >{`${p.s.downloads_this_month} used this month; ${p.s.planned_downloads_per_month} planned a month of ${p.s.download_budget}`}</span>
  );
}

export function SourcesPage(p: { sources: SourceRead[]; notice?: string | undefined }): JSX.Element {
  return (
    <Layout title="Sources" nav="sources">
      <h1>Sources (Amplitude projects)</h1>
      <Notice text={p.notice} />
      <p>
        <a class="button" href="/sources/new">
          Add Amplitude source
        </a>
      </p>
      {p.sources.length === 0 ? (
        <p class="card">
          No source yet. A source is one Amplitude project: its cohorts can then be listed, synced on a cadence, or
          pushed in real time by Amplitude's cohort webhook.
        </p>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead cols={['Source', 'Region', 'Cohort downloads', 'Added']} />
            <tbody>
              {p.sources.map((s) => (
                <tr>
                  <NameCell name={s.name} id={s.id} href={sourcePath(s.id)} />
                  <td safe>{s.region}</td>
                  <td>
                    <Budget s={s} />
                  </td>
                  <td safe>{fmtTime(s.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}

export function NewSourcePage(p: {
  values: SourceFormValues;
  errors: Record<string, string>;
  formError?: string | undefined;
}): JSX.Element {
  const v = p.values;
  const e = p.errors;
  const f = formFields(v, e);
  return (
    <FormPage
      title="Add an Amplitude source"
      nav="sources"
      action="/sources"
      submit="Save source"
      formError={p.formError}
      intro={
        <p class="muted">
          One source per Amplitude project. The keys are under Settings › Projects › (your project) › General in
          Amplitude; they are stored encrypted and never shown again.
        </p>
      }
    >
      <f.Input name="name" label="Name" required placeholder="Production project" />
      <f.Secret name="api_key" label="Project API key" required />
      <f.Secret name="secret_key" label="Project secret key" required />
      <f.Select name="region" label="Data region" options={REGIONS} initial="us" />
      <f.Input
        name="download_budget"
        label="Cohort downloads allowed per month"
        type="number"
        initial="500"
        hint="Amplitude allows 500 a month on Growth and Enterprise plans; a sync whose cadence would exceed it is refused."
      />
      <f.Input
        name="api_url"
        label="Behavioral Cohorts API URL (optional)"
        type="url"
        hint="Leave empty to use the region's address; set only for a proxy or the Amplitude emulator."
      />
    </FormPage>
  );
}

/** The webhook secret, hidden until asked for (it is a credential). */
export function WebhookSecret(p: { sourceId: string; secret?: string | undefined }): JSX.Element {
  if (p.secret !== undefined) {
    return (
      <CopyField
        id="webhook-header"
        label="Header"
        value={`Authorization: Bearer ${p.secret}`}
        hint="Add it as a custom header of the webhook. Anyone with it can change this project's cohort memberships here."
      />
    );
  }
  return (
    <div id="webhook-secret">
      <span class="copy-label">Header</span>
      <div class="copy-row">
        <code>Authorization: Bearer ••••••••</code>
        <button
          type="button"
          class="secondary small"
          hx-post={sourcePath(p.sourceId, '/secret')}
          hx-target="#webhook-secret"
          hx-swap="outerHTML"
        >
          Reveal secret
        </button>
      </div>
    </div>
  );
}

export function SourcePage(p: {
  source: SourceRead;
  cohorts: CohortRead[];
  webhookUrl: string;
  secret?: string | undefined;
  notice?: string | undefined;
  error?: string | undefined;
  values?: SourceFormValues;
  errors?: Record<string, string>;
}): JSX.Element {
  const s = p.source;
  const v = p.values ?? { name: s.name, download_budget: String(s.download_budget), api_url: s.api_url };
  const e = p.errors ?? {};
  const f = formFields(v, e);
  return (
    <ObjectPage
      title={`Source ${s.name}`}
      heading={`Source: ${s.name}`}
      nav="sources"
      back={{ href: '/sources', label: 'All sources' }}
      notice={p.notice}
      error={p.error}
    >
      <section class="card">
        <Facts>
          <Fact label="Id" code={s.id} />
          <Fact label="Region" text={s.region} />
          <Fact label="Cohorts API" text={s.api_url} />
          <Fact label="Cohort downloads">
            <Budget s={s} />
          </Fact>
        </Facts>
        <div class="actions">
          <TestButton action={sourcePath(s.id, '/test')} />
        </div>
        <TestSlot />
      </section>

      <section class="card" aria-labelledby="webhook-title">
        <h2 id="webhook-title">Real-time cohorts: Amplitude's cohort webhook</h2>
        <p>
          In Amplitude, open Data › Destinations, add a <strong>Cohort Webhook</strong>, and paste these two values.
          Then, on a cohort, choose Sync to this webhook with the real-time cadence; and here, create a sync of that
          cohort with the <code>realtime</code> cadence.
        </p>
        <CopyField id="webhook-url" label="Webhook URL" value={p.webhookUrl} />
        <WebhookSecret sourceId={s.id} secret={p.secret} />
      </section>

      <section class="card" aria-labelledby="cohorts-title">
        <h2 id="cohorts-title">Cohorts of this project</h2>
        <form method="post" action={sourcePath(s.id, '/refresh')} class="actions">
          <button type="submit" class="secondary">
            Refresh cohorts from Amplitude
          </button>
          <span class="muted">Listing cohorts is free: it does not count as a download.</span>
        </form>
        {p.cohorts.length === 0 ? (
          <p class="muted">No cohorts known yet: refresh to list the project's cohorts.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <TableHead cols={['Cohort', { label: 'Size', num: true }, 'Computed', 'Syncs']} />
              <tbody>
                {p.cohorts.map((c) => (
                  <tr>
                    <NameCell name={c.name} id={c.id} />
                    <td class="num">{c.size === null ? '—' : String(c.size)}</td>
                    <td safe>{fmtTime(c.last_computed)}</td>
                    <td>
                      {c.sync_ids.length === 0 ? (
                        <a href={`/syncs/new?cohort_id=${encodeURIComponent(c.id)}`}>Sync it…</a>
                      ) : (
                        c.sync_ids.map((id) => (
                          <div>
                            <a href={`/syncs/${encodeURIComponent(id)}`} safe>
                              {id}
                            </a>
                          </div>
                        ))
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <SettingsCard action={sourcePath(s.id, '/edit')}>
        <f.Input name="name" label="Name" required />
        <f.Select name="region" label="Data region" options={REGIONS} />
        <f.Secret name="api_key" label="New project API key" hint="Leave both keys empty to keep the current ones." />
        <f.Secret name="secret_key" label="New project secret key" />
        <f.Input name="download_budget" label="Cohort downloads allowed per month" type="number" />
        <f.Input name="api_url" label="Behavioral Cohorts API URL" type="url" hint="Empty: the region's address." />
      </SettingsCard>
      <DangerZone noun="source" href={sourcePath(s.id, '/delete')}>
        <p>Deleting the source forgets its keys and its cohorts; syncs of its cohorts must go first, or with it.</p>
      </DangerZone>
    </ObjectPage>
  );
}

export function DeleteSourcePage(p: {
  source: SourceRead;
  cohorts: CohortRead[];
  error?: string | undefined;
}): JSX.Element {
  const s = p.source;
  const syncs = p.cohorts.reduce((n, c) => n + c.sync_ids.length, 0);
  return (
    <ConfirmPage
      title={`Delete source ${s.name}?`}
      nav="sources"
      action={sourcePath(s.id, '/delete')}
      confirmLabel="Delete source"
      cancelHref={sourcePath(s.id)}
      danger
      error={p.error}
    >
      <p
        safe
      >{`Its ${p.cohorts.length} cohort(s), their members and its webhook are forgotten; Amplitude is not touched.`}</p>
      {syncs > 0 ? (
        <label class="choice">
          <input type="checkbox" name="force" value="yes" />
          <span
            safe
          >{`Also delete the ${syncs} sync(s) of its cohorts, removing their tags and segments from OneSignal (without this, the delete is refused)`}</span>
        </label>
      ) : (
        ''
      )}
    </ConfirmPage>
  );
}
