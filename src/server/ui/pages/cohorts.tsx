import type { CohortRead, DestinationRead, SyncRead } from '../../api/queries';
import { Field, Layout, Notice, TableHead } from '../layout';

/**
 * An attribute value with & and < as entities: the renderer escapes only quotes in attributes, and
 * a cohort name (from Amplitude or a file) must never appear in the page as markup.
 */
const attr = (v: string): string => v.replaceAll('&', '&amp;').replaceAll('<', '&lt;');

export function CohortsPage(p: {
  cohorts: CohortRead[];
  destinations: DestinationRead[];
  syncs: SyncRead[];
  notice?: string;
  selectedDestination?: string;
  sources?: Array<{ id: string; name: string }>;
  importForm?: { values: ImportValues; errors: Record<string, string> };
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
      <SourceRefresh sources={p.sources ?? []} />
      {p.cohorts.length === 0 ? (
        <p class="card">
          No cohorts yet. List an Amplitude project's cohorts from its <a href="/sources">source</a> (
          <code>ampsignal cohort list --source …</code>) or import one from a file below (
          <code>ampsignal cohort import --file … --name …</code>).
        </p>
      ) : (
        <table>
          <TableHead cols={['Cohort', 'Origin', { label: 'Size', num: true }, 'Syncs', 'Actions']} />
          <tbody>
            {p.cohorts.map((c) => {
              const mine = p.syncs.filter((s) => s.cohort_id === c.id);
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
                  <td class="row-actions">
                    {p.destinations.length === 0 ? (
                      <span class="muted">no destination</span>
                    ) : (
                      <a
                        class="button small"
                        href={`/syncs/new?${new URLSearchParams({ cohort_id: c.id, ...(p.selectedDestination ? { destination_id: p.selectedDestination } : {}) })}`}
                        aria-label={attr(`Sync cohort ${c.name}`)}
                      >
                        Sync…
                      </a>
                    )}
                    <a
                      class="button secondary small"
                      href={`/cohorts/${encodeURIComponent(c.id)}/delete`}
                      aria-label={attr(`Delete cohort ${c.name}`)}
                    >
                      Delete…
                    </a>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <ImportCard values={p.importForm?.values ?? {}} errors={p.importForm?.errors ?? {}} />
    </Layout>
  );
}

export interface ImportValues {
  name?: string | undefined;
  id?: string | undefined;
  ids?: string | undefined;
}

function SourceRefresh(p: { sources: Array<{ id: string; name: string }> }): JSX.Element {
  if (p.sources.length === 0) return '';
  return (
    <div class="actions">
      {p.sources.map((src) => (
        <form method="post" action={`/sources/${encodeURIComponent(src.id)}/refresh`}>
          <input type="hidden" name="back" value="/cohorts" />
          <button type="submit" class="secondary small" safe>
            {`Refresh cohorts of ${src.name}`}
          </button>
        </form>
      ))}
    </div>
  );
}

/** A cohort from pasted ids or a file: CSV with a user_id column, or one id per line (as `cohort import`). */
function ImportCard(p: { values: ImportValues; errors: Record<string, string> }): JSX.Element {
  const e = p.errors;
  return (
    <section class="card" aria-labelledby="import-title">
      <h2 id="import-title">Import a cohort</h2>
      <p class="muted">
        Paste the member ids, or choose a file: a CSV with a <code>user_id</code> column, or one id per line. Importing
        again with the same id replaces its members.
      </p>
      {e._ ? (
        <p class="error" role="alert" safe>
          {e._}
        </p>
      ) : (
        ''
      )}
      <form class="stack" method="post" action="/cohorts/import" enctype="multipart/form-data" novalidate>
        <Field
          name="name"
          label="Cohort name"
          value={p.values.name}
          error={e.name}
          required
          hint="Also the OneSignal segment's name."
        />
        <Field
          name="id"
          label="Cohort id (optional)"
          value={p.values.id}
          error={e.id}
          hint="Part of the tag key: letters, digits and _ . : -. Empty: a new id."
        />
        <div class={e.ids ? 'field invalid' : 'field'}>
          <label for="import-ids">Member ids (one per line)</label>
          <textarea id="import-ids" name="ids" rows="6" aria-describedby="import-ids-hint" safe>
            {p.values.ids ?? ''}
          </textarea>
          <small id="import-ids-hint" class="muted">
            Or a CSV with a user_id column. Blank lines are skipped, repeats counted once.
          </small>
          {e.ids ? (
            <p class="error" role="alert" safe>
              {e.ids}
            </p>
          ) : (
            ''
          )}
        </div>
        <Field name="file" label="File" type="file" error={e.file} hint="Instead of pasting: a CSV or a list of ids." />
        <div class="actions">
          <button type="submit">Import</button>
        </div>
      </form>
    </section>
  );
}
