import type { VerificationView } from '../../../sync/verify';
import type { RunRead, SyncRead } from '../../api/queries';
import { SeriesChart } from '../charts';
import { Badge, type Column, fmtTime, Layout, Notice, Num, TableHead } from '../layout';
import { ConfirmPage } from '../parts';
import { VerificationPanel } from './verify';

export function SyncPage(p: {
  sync: SyncRead;
  runs: RunRead[];
  verification?: VerificationView | null;
  notice?: string;
  error?: string;
  /** A run was asked for at this time (queued, or running): the history follows it until it ends. */
  waitingSince?: number | undefined;
}): JSX.Element {
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
              <th scope="row">Tag value</th>
              <td>{s.tag_value === 'entered_at' ? 'the Unix time the user entered the cohort' : '"1"'}</td>
            </tr>
            <tr>
              <th scope="row">Segment</th>
              <td safe>{s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : '—')}</td>
            </tr>
            <tr>
              <th scope="row">Next scheduled run</th>
              <td safe>{fmtTime(s.next_run_at)}</td>
            </tr>
            <tr>
              <th scope="row">Removal guard</th>
              <td
                safe
              >{`a run that would remove more than ${Math.round(s.guard_threshold * 100)}% of the confirmed members waits for approval`}</td>
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
      <VerificationPanel syncId={s.id} last={p.verification ?? null} />
      <section class="card" aria-labelledby="chart-title">
        <h2 id="chart-title">Members, additions and removals per run</h2>
        <RunsChart runs={p.runs} />
      </section>
      <RunHistory syncId={s.id} runs={p.runs} waitingSince={p.waitingSince} />
      <section class="card danger-zone" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete</h2>
        <p>Deleting the sync removes its tag from the users OneSignal confirmed it on, and its segment.</p>
        <a class="button danger" href={`${base}/delete`}>
          Delete sync…
        </a>
      </section>
    </Layout>
  );
}

/** The run page has every counter; the history keeps the ones that tell runs apart, so it fits a laptop screen. */
const HISTORY_COUNTERS = [
  ['members', 'Members'],
  ['added', 'Added'],
  ['removed', 'Removed'],
  ['delivered', 'Delivered'],
  ['not_found', 'Not found'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
] as const;

const shortTime = (ms: number) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ');

/** Real runs (not dry runs), oldest first: members as a line, additions and removals as bars. */
function RunsChart(p: { runs: RunRead[] }): JSX.Element {
  const runs = p.runs
    .filter((r) => !r.dry_run && r.status !== 'running')
    .slice(0, 30)
    .reverse();
  return (
    <SeriesChart
      title="Members, additions and removals per run"
      xLabels={runs.map((r) => shortTime(r.started_at))}
      empty="No finished run yet: the chart starts with the first one."
      series={[
        { label: 'Added', cls: 's-added', kind: 'bar', values: runs.map((r) => r.added) },
        { label: 'Removed', cls: 's-removed', kind: 'bar', values: runs.map((r) => r.removed) },
        { label: 'Members', cls: 's-members', kind: 'line', values: runs.map((r) => r.members) },
      ]}
    />
  );
}

export function DeleteSyncPage(p: { sync: SyncRead; error?: string | undefined }): JSX.Element {
  const s = p.sync;
  const base = `/syncs/${encodeURIComponent(s.id)}`;
  return (
    <ConfirmPage
      title={`Delete the sync of ${s.cohort_name ?? s.cohort_id}?`}
      nav="overview"
      action={`${base}/delete`}
      confirmLabel="Delete sync"
      cancelHref={base}
      danger
      error={p.error}
    >
      <ul>
        <li>
          The tag <code safe>{s.tag_key}</code> is removed from every user OneSignal confirmed it on (
          <span safe>{s.destination_name ?? s.destination_id}</span>).
        </li>
        <li safe>
          {s.segment_id ? `Its OneSignal segment (${s.segment_id}) is deleted.` : 'It has no OneSignal segment.'}
        </li>
        <li>Its run history is deleted. The cohort itself stays.</li>
      </ul>
    </ConfirmPage>
  );
}

/**
 * The run history. While a run asked for is queued or running it re-fetches itself every two
 * seconds (htmx); once that run has ended the answer has htmx reload the page (chart included).
 */
export function RunHistory(p: { syncId: string; runs: RunRead[]; waitingSince?: number | undefined }): JSX.Element {
  const polling =
    p.waitingSince === undefined
      ? {}
      : {
          'hx-get': `/syncs/${encodeURIComponent(p.syncId)}/history?since=${p.waitingSince}`,
          'hx-trigger': 'every 2s',
          'hx-swap': 'outerHTML',
        };
  return (
    <div id="run-history" {...polling}>
      <h2>Run history</h2>
      {p.waitingSince === undefined ? (
        ''
      ) : (
        <p class="muted">A run is queued or running: this list updates by itself.</p>
      )}
      {p.runs.length === 0 ? (
        <p class="card">No runs yet.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead
              cols={[
                'Started',
                'Status',
                'Trigger',
                ...HISTORY_COUNTERS.map(([, label]): Column => ({ label, num: true })),
              ]}
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
                  {HISTORY_COUNTERS.map(([k]) => (
                    <Num n={r[k]} />
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** Whether the run asked for at `since` has ended (a run started then or later, no longer running). */
export function runAskedForEnded(runs: RunRead[], since: number): boolean {
  const newest = runs[0];
  return newest !== undefined && newest.started_at >= since - 1000 && newest.status !== 'running';
}
