import type { DestinationRead, StreamRead, SyncRead } from '../../api/queries';
import { Badge, fmtTime, Layout, Num, TableHead } from '../layout';
import { StreamsTable } from './streams';

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
