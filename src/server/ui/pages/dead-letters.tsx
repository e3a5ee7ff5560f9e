import type { DeadLetterRead, StreamRead } from '../../api/queries';
import { fmtTime, Layout, Notice, Num, TableHead } from '../layout';

export function DeadLettersPage(p: {
  stream: StreamRead;
  letters: DeadLetterRead[];
  notice?: string | undefined;
}): JSX.Element {
  const replay = `/streams/${encodeURIComponent(p.stream.id)}/dead-letters/replay`;
  return (
    <Layout title={`Dead letters of ${p.stream.name}`} nav="streams">
      <h1 safe>{`Dead letters: ${p.stream.name}`}</h1>
      <p>
        <a href={`/streams/${encodeURIComponent(p.stream.id)}`}>← The stream</a>
      </p>
      <Notice text={p.notice} />
      {p.letters.length === 0 ? (
        <p class="card">No dead letters: every event was forwarded or is still pending.</p>
      ) : (
        <>
          <form method="post" action={replay} class="actions">
            <button type="submit">{`Replay all ${p.stream.dead_lettered}`}</button>
            <span class="muted">
              Fix the cause first (a wrong key, a missing user id): replayed events are sent again with their original
              insert_id, so Amplitude never counts one twice.
            </span>
          </form>
          <div class="table-wrap">
            <table>
              <TableHead
                cols={['Received', 'OneSignal event id', 'Kind', 'Reason', { label: 'Attempts', num: true }, '']}
              />
              <tbody>
                {p.letters.map((d) => (
                  <tr>
                    <td safe>{fmtTime(d.received_at)}</td>
                    <td>
                      <code safe>{d.event_id}</code>
                    </td>
                    <td safe>{d.kind}</td>
                    <td class="wrap" safe>
                      {d.reason ?? '—'}
                    </td>
                    <Num n={d.attempts} />
                    <td>
                      <form method="post" action={replay}>
                        <input type="hidden" name="id" value={String(d.id)} />
                        <button type="submit" class="secondary small" aria-label={`Replay ${d.event_id}`}>
                          Replay
                        </button>
                      </form>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </Layout>
  );
}
