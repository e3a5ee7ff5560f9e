import type { UserView } from '../../../sync/user-history';
import { Badge, Layout, Notice, TableHead } from '../layout';

/** The user search box: one external id, every sync it is or was in. */
export function UserSearchForm(p: { value?: string }): JSX.Element {
  return (
    <form method="get" action="/users" aria-label="Look up a user">
      <label for="external_id">External id</label>{' '}
      <input id="external_id" name="external_id" value={p.value ?? ''} required maxlength="1000" />{' '}
      <button type="submit">Look up</button>
    </form>
  );
}

function yesNo(v: boolean | null): string {
  return v === null ? '—' : v ? 'yes' : 'no';
}

export function UserPage(p: { query?: string; user?: UserView; error?: string }): JSX.Element {
  const u = p.user;
  return (
    <Layout title={u ? `User ${u.external_id}` : 'Users'} nav="none">
      <h1>Why does a user (not) have the tag?</h1>
      <UserSearchForm value={p.query} />
      <Notice kind="alert" text={p.error} />
      {u && u.syncs.length === 0 ? (
        <p safe>{`${u.external_id} is in no sync: never in a synced cohort, or forgotten since.`}</p>
      ) : (
        ''
      )}
      {(u?.syncs ?? []).map((s) => (
        <section class="card">
          <h2>
            <a href={`/syncs/${encodeURIComponent(s.sync_id)}`} safe>
              {`${s.cohort_name ?? s.cohort_id} → ${s.destination_name ?? s.destination_id}`}
            </a>
          </h2>
          <p
            safe
          >{`Tag ${s.tag_key}: wanted ${yesNo(s.in_cohort)}, carried by OneSignal ${yesNo(s.tag_confirmed)}${s.state && s.state !== 'in_sync' ? ` — ${s.state}${s.last_error ? `: ${s.last_error}` : ''}` : ''}`}</p>
          {s.records.length === 0 ? (
            <p class="muted">No records kept for this user in this sync.</p>
          ) : (
            <table>
              <TableHead cols={['At', 'Run', 'Change', 'Outcome', 'Status', 'Message']} />
              <tbody>
                {s.records.map((r) => (
                  <tr>
                    <td safe>{r.at}</td>
                    <td>
                      <a href={`/runs/${encodeURIComponent(r.run_id)}`} safe>
                        {`${r.run_id} (${r.trigger})`}
                      </a>
                    </td>
                    <td safe>{r.operation}</td>
                    <td>
                      <Badge status={r.outcome} />
                    </td>
                    <td safe>{r.status === null ? '—' : String(r.status)}</td>
                    <td safe>{r.message ?? '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      ))}
    </Layout>
  );
}
