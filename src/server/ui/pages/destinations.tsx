import { Field, Layout, Notice } from '../layout';

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
