import type { DriftKind, VerificationView } from '../../../sync/verify';
import { Badge, fmtTime, TableHead } from '../layout';

/** The sync page's read-back panel: the last verification's match rate, its drifted users, and "Verify now". */

const KIND_TEXT: Record<DriftKind, string> = {
  tag_missing: 'tag missing',
  tag_changed: 'tag changed',
  tag_present_after_leaving: 'tag present though left',
  user_gone: 'user gone',
};

/** Drifted users shown on the page; the API has the rest. */
const SHOWN = 20;

function rate(v: VerificationView): string {
  if (v.match_rate === null) return '—';
  return `${Math.round(v.match_rate * 1000) / 10}%`;
}

function Last(p: { v: VerificationView }): JSX.Element {
  const v = p.v;
  const summary =
    v.status === 'running'
      ? `reading ${v.sample_size} user(s) back, one per second…`
      : v.status === 'failed'
        ? `failed: ${v.error ?? 'no error recorded'}`
        : `${v.matched} of ${v.matched + v.drifted} sampled user(s) match the ledger (${v.checked} read back${v.repaired ? `, ${v.repaired} repaired` : ''})`;
  return (
    <>
      <p>
        <span class="big" data-testid="match-rate" safe>
          {`Last match rate: ${rate(v)}`}
        </span>{' '}
        <Badge status={v.status} />{' '}
        <span class="muted" safe>{`${fmtTime(v.finished_at ?? v.started_at)} · ${v.trigger} · ${summary}`}</span>
      </p>
      {v.drift.length ? (
        <table>
          <TableHead cols={['Drifted user', 'Drift', 'Ledger expects', 'OneSignal has']} />
          <tbody>
            {v.drift.slice(0, SHOWN).map((d) => (
              <tr>
                <td>
                  <code safe>{d.external_id}</code>
                </td>
                <td safe>{KIND_TEXT[d.kind]}</td>
                <td safe>{d.expected === null ? 'no tag' : `"${d.expected}"`}</td>
                <td safe>
                  {d.actual === null ? (d.kind === 'user_gone' ? 'no such user' : 'no tag') : `"${d.actual}"`}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        ''
      )}
      {v.drifted > SHOWN ? <p class="muted" safe>{`… and ${v.drifted - SHOWN} more`}</p> : ''}
    </>
  );
}

export function VerificationPanel(p: { syncId: string; last: VerificationView | null }): JSX.Element {
  return (
    <section class="card" aria-labelledby="readback">
      <h2 id="readback">Read-back verification</h2>
      {p.last ? (
        <Last v={p.last} />
      ) : (
        <p class="muted">Not verified yet: the scheduler reads a small sample back once a day after the first run.</p>
      )}
      <form class="inline-form" method="post" action={`/syncs/${encodeURIComponent(p.syncId)}/verify`}>
        <div class="field">
          <label for="f-sample">Users to read back</label>
          <input id="f-sample" name="sample" type="number" min="1" max="10000" value="50" />
        </div>
        <div class="field">
          <label>
            <input type="checkbox" name="repair" value="true" /> Repair: mark drifted users for the next delivery
          </label>
        </div>
        <button type="submit">Verify now</button>
      </form>
    </section>
  );
}
