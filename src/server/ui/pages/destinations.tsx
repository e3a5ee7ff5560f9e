import type { DestinationRead, SyncRead } from '../../api/queries';
import { Badge, Field, Layout, Notice, Num, TableHead } from '../layout';
import {
  ConfirmPage,
  DangerZone,
  Fact,
  Facts,
  FormPage,
  formFields,
  ObjectPage,
  PostButton,
  SelectField,
  SettingsCard,
  StatusReason,
  TestButton,
  TestSlot,
} from '../parts';

export interface DestinationFormValues {
  name?: string;
  app_id?: string;
  api_url?: string;
  external_id_property?: string;
  tag_key_template?: string;
  max_tags_per_user?: string;
  rate_limit_per_second?: string;
  source_id?: string;
}

export function NewDestinationPage(p: {
  values: DestinationFormValues;
  errors: Record<string, string>;
  formError?: string;
  sources: Array<{ id: string; name: string }>;
}): JSX.Element {
  const v = p.values;
  const e = p.errors;
  const f = formFields(v, e);
  return (
    <FormPage
      title="Add a OneSignal destination"
      nav="destinations"
      action="/destinations"
      submit="Save destination"
      formError={p.formError}
      actions={<TestButton action="/destinations/test" include />}
      footer={<TestSlot />}
    >
      <f.Input name="name" label="Name" required placeholder="Production app" />
      <Field
        name="app_id"
        label="OneSignal App ID"
        value={v.app_id}
        error={e.app_id}
        required
        hint="Settings > Keys & IDs in the OneSignal dashboard."
      />
      <f.Secret name="api_key" label="App API key" required hint="Stored encrypted; never shown again." />
      <f.Input
        name="external_id_property"
        label="Identity mapping: Amplitude property used as OneSignal external_id"
        initial="user_id"
      />
      <f.Input
        name="tag_key_template"
        label="Tag key template"
        initial="amp_cohort_{cohort_id}"
        hint="Must contain {cohort_id}."
      />
      <f.Input name="max_tags_per_user" label="Max cohort tags per user (plan budget)" type="number" initial="10" />
      <f.Input
        name="rate_limit_per_second"
        label="Requests per second for this app"
        type="number"
        initial="1000"
        hint="OneSignal allows 1,000 a second per app by default; lower it to leave room for other senders."
      />
      {p.sources.length === 0 ? (
        ''
      ) : (
        <SelectField
          name="source_id"
          label="Amplitude source whose cohorts this app receives"
          options={[
            { value: '', label: 'none (cohorts imported from files)' },
            ...p.sources.map((x) => ({ value: x.id, label: x.name })),
          ]}
          value={v.source_id ?? ''}
          error={e.source_id}
        />
      )}
      <f.Input
        name="api_url"
        label="API base URL"
        type="url"
        initial="https://api.onesignal.com"
        hint="Change only for a proxy or the OneSignal emulator."
      />
    </FormPage>
  );
}

export function TestResult(p: { ok: boolean; message: string }): JSX.Element {
  return (
    <p class={p.ok ? 'result ok' : 'result bad'} role="status" safe>
      {p.ok ? `Connection OK: ${p.message}` : `Connection failed: ${p.message}`}
    </p>
  );
}

const destinationPath = (id: string, tail = '') => `/destinations/${encodeURIComponent(id)}${tail}`;

const Status = (p: { d: DestinationRead }) => <StatusReason status={p.d.status} reason={p.d.status_reason} />;

export function DestinationsPage(p: {
  destinations: DestinationRead[];
  syncs: SyncRead[];
  notice?: string | undefined;
}): JSX.Element {
  return (
    <Layout title="Destinations" nav="destinations">
      <h1>Destinations (OneSignal apps)</h1>
      <Notice text={p.notice} />
      <p>
        <a class="button" href="/destinations/new">
          Add OneSignal destination
        </a>
      </p>
      {p.destinations.length === 0 ? (
        <p class="card">No destination yet: a destination is one OneSignal app that cohorts are synced to as tags.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead
              cols={[
                'Destination',
                'OneSignal app id',
                'Status',
                { label: 'Syncs', num: true },
                { label: 'Pending rows', num: true },
              ]}
            />
            <tbody>
              {p.destinations.map((d) => (
                <tr>
                  <td>
                    <a href={destinationPath(d.id)} safe>
                      {d.name}
                    </a>
                  </td>
                  <td>
                    <code safe>{d.app_id}</code>
                  </td>
                  <td>
                    <Status d={d} />
                  </td>
                  <Num n={p.syncs.filter((s) => s.destination_id === d.id).length} />
                  <Num n={d.pending_rows} />
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Layout>
  );
}

export const DESTINATION_EDIT_FIELDS = [
  'name',
  'api_key',
  'api_url',
  'rate_limit_per_second',
  'max_tags_per_user',
  'tag_key_template',
  'external_id_property',
] as const;

export function DestinationPage(p: {
  destination: DestinationRead;
  syncs: SyncRead[];
  notice?: string | undefined;
  error?: string | undefined;
  values?: Record<string, string | undefined>;
  errors?: Record<string, string>;
}): JSX.Element {
  const d = p.destination;
  const v = p.values ?? {
    name: d.name,
    api_url: d.api_url,
    rate_limit_per_second: String(d.rate_limit_per_second),
    max_tags_per_user: String(d.max_tags_per_user),
    tag_key_template: d.tag_key_template,
    external_id_property: d.external_id_property,
  };
  const e = p.errors ?? {};
  const f = formFields(v, e);
  const synced = p.syncs.length > 0;
  return (
    <ObjectPage
      title={`Destination ${d.name}`}
      heading={`Destination: ${d.name}`}
      nav="destinations"
      back={{ href: '/destinations', label: 'All destinations' }}
      notice={p.notice}
      error={p.error}
    >
      <section class="card">
        <Facts>
          <Fact label="Id" code={d.id} />
          <Fact label="Status">
            <Status d={d} />
          </Fact>
          <Fact label="OneSignal app id" code={d.app_id} />
          <Fact label="API base URL" text={d.api_url} />
          <Fact label="Amplitude source" text={d.source_id} />
          <Fact label="Tag key template" code={d.tag_key_template} />
          <Fact label="external_id from" text={d.external_id_property} />
          <Fact label="Cohort tags per user" text={d.max_tags_per_user} />
          <Fact label="Rate limit" text={`${d.rate_limit_per_second} requests/s`} />
          <Fact label="Rows waiting for OneSignal" text={d.pending_rows} />
        </Facts>
        <div class="actions">
          <TestButton action={destinationPath(d.id, '/test')} />
          {d.status === 'paused' ? (
            <PostButton action={destinationPath(d.id, '/resume')} label="Resume delivery" />
          ) : (
            <PostButton
              action={destinationPath(d.id, '/pause')}
              label="Pause delivery"
              secondary
              fields={{ reason: 'paused from the web UI' }}
            />
          )}
        </div>
        <TestSlot />
      </section>
      <h2>Syncs to this app</h2>
      {p.syncs.length === 0 ? (
        <p class="card">
          None yet. <a href={`/syncs/new?destination_id=${encodeURIComponent(d.id)}`}>Pick a cohort to sync here</a>.
        </p>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead cols={['Cohort', 'Tag key', 'Cadence', 'Status']} />
            <tbody>
              {p.syncs.map((s) => (
                <tr>
                  <td>
                    <a href={`/syncs/${encodeURIComponent(s.id)}`} safe>
                      {s.cohort_name ?? s.cohort_id}
                    </a>
                  </td>
                  <td>
                    <code safe>{s.tag_key}</code>
                  </td>
                  <td safe>{s.cadence}</td>
                  <td>
                    <Badge status={s.status} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <SettingsCard action={destinationPath(d.id, '/edit')}>
        <f.Input name="name" label="Name" required />
        <f.Secret
          name="api_key"
          label="New App API key"
          hint="Leave empty to keep the current key. A destination paused for a refused key stays paused until you resume it."
        />
        <f.Input name="api_url" label="API base URL" type="url" />
        <f.Input name="rate_limit_per_second" label="Requests per second for this app" type="number" />
        <f.Input name="max_tags_per_user" label="Max cohort tags per user (plan budget)" type="number" />
        <f.Input
          name="tag_key_template"
          label="Tag key template"
          hint={
            synced
              ? 'Fixed while syncs use this destination: their tags were set under it.'
              : 'Must contain {cohort_id}.'
          }
        />
        <f.Input
          name="external_id_property"
          label="Amplitude property used as OneSignal external_id"
          hint={synced ? 'Fixed while syncs use this destination.' : undefined}
        />
      </SettingsCard>
      <DangerZone noun="destination" href={destinationPath(d.id, '/delete')}>
        <p safe>
          {synced
            ? `Deleting this destination deletes its ${p.syncs.length} sync(s); you choose whether their tags and segments are removed from OneSignal.`
            : 'Nothing syncs to this destination: deleting it forgets its settings and key.'}
        </p>
      </DangerZone>
    </ObjectPage>
  );
}

export function DeleteDestinationPage(p: {
  destination: DestinationRead;
  syncs: SyncRead[];
  error?: string | undefined;
}): JSX.Element {
  const d = p.destination;
  return (
    <ConfirmPage
      title={`Delete destination ${d.name}?`}
      nav="destinations"
      action={destinationPath(d.id, '/delete')}
      confirmLabel="Delete destination"
      cancelHref={destinationPath(d.id)}
      danger
      error={p.error}
    >
      {p.syncs.length === 0 ? (
        <p>No sync uses it: only its settings and key are forgotten. OneSignal is not touched.</p>
      ) : (
        <>
          <p safe>{`These ${p.syncs.length} sync(s) are deleted with it:`}</p>
          <ul>
            {p.syncs.map((s) => (
              <li>
                <span safe>{s.cohort_name ?? s.cohort_id}</span> (tag <code safe>{s.tag_key}</code>)
              </li>
            ))}
          </ul>
          <fieldset>
            <legend>At OneSignal</legend>
            <label class="choice">
              <input type="radio" name="remove_tags" value="yes" checked />
              Remove their tags from users and delete their segments
            </label>
            <label class="choice">
              <input type="radio" name="remove_tags" value="no" />
              Keep the tags and segments (only ampsignal forgets them)
            </label>
          </fieldset>
        </>
      )}
    </ConfirmPage>
  );
}
