import type { VerificationView } from '../../../sync/verify';
import type { RunRead, SyncRead } from '../../api/queries';
import { Badge, type Column, fmtTime, Layout, Notice, Num, TableHead } from '../layout';
import { RUN_COUNTERS } from './run';
import { VerificationPanel } from './verify';

export function SyncPage(p: {
  sync: SyncRead;
  runs: RunRead[];
  verification?: VerificationView | null;
  notice?: string;
  error?: string;
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
              <th scope="row">Segment</th>
              <td safe>{s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : '—')}</td>
            </tr>
            <tr>
              <th scope="row">Next scheduled run</th>
              <td safe>{fmtTime(s.next_run_at)}</td>
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
      <h2>Run history</h2>
      {p.runs.length === 0 ? (
        <p class="card">No runs yet.</p>
      ) : (
        <table>
          <TableHead
            cols={['Started', 'Status', 'Trigger', ...RUN_COUNTERS.map(([, label]): Column => ({ label, num: true }))]}
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
                {RUN_COUNTERS.map(([k]) => (
                  <Num n={r[k]} />
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}
