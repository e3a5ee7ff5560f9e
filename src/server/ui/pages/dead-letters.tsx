import type { DeadLetterRead, StreamRead } from '../../api/queries';
import { fmtTime, Layout, Num, TableHead } from '../layout';

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
