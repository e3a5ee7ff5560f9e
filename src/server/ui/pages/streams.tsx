import type { StreamRead } from '../../api/queries';
import { Badge, type Column, Layout, Num, TableHead } from '../layout';

export function StreamsTable(p: { streams: StreamRead[] }): JSX.Element {
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
