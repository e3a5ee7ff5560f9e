import { CADENCES } from '../../../sync/cadence';
import type { CohortRead, DestinationRead, SyncRead } from '../../api/queries';
import { Layout, Notice, TableHead } from '../layout';

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
