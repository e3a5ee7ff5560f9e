import type { RecordOutcome, RecordPage } from '../../../sync/record-reads';
import { Badge, Num, TableHead } from '../layout';

/** Records on one page of the run page. */
export const RECORDS_PER_PAGE = 50;

const FILTERS: Array<{ value: RecordOutcome | undefined; label: string }> = [
  { value: undefined, label: 'All' },
  { value: 'delivered', label: 'Delivered' },
  { value: 'not_found', label: 'Not found' },
  { value: 'failed', label: 'Failed' },
  { value: 'pending', label: 'Pending' },
];

function recordsHref(runId: string, q: { outcome?: RecordOutcome | undefined; cursor?: string | undefined }): string {
  const params = new URLSearchParams();
  if (q.outcome) params.set('outcome', q.outcome);
  if (q.cursor) params.set('cursor', q.cursor);
  const s = params.toString();
  return `/runs/${encodeURIComponent(runId)}${s ? `?${s}` : ''}#records`;
}

/** A run's records, 50 a page, filtered by outcome, with the next page and the downloads. */
export function RunRecordsSection(p: {
  runId: string;
  page: RecordPage;
  outcome: RecordOutcome | undefined;
  /** A cursor was given: this is not the first page. */
  paged: boolean;
  skippedAnonymous: number;
}): JSX.Element {
  const exportBase = `/runs/${encodeURIComponent(p.runId)}/records/export`;
  const outcomeParam = p.outcome ? `&outcome=${p.outcome}` : '';
  return (
    <section id="records" aria-labelledby="records-title">
      <h2 id="records-title">Records</h2>
      <nav class="actions" aria-label="Filter records by outcome">
        {FILTERS.map((f) => (
          <a
            href={recordsHref(p.runId, { outcome: f.value })}
            aria-current={f.value === p.outcome ? 'page' : undefined}
            safe
          >
            {f.label}
          </a>
        ))}
        <a href={`${exportBase}?format=csv${outcomeParam}`} download="">
          Download CSV
        </a>
        <a href={`${exportBase}?format=ndjson${outcomeParam}`} download="">
          Download NDJSON
        </a>
      </nav>
      {p.skippedAnonymous > 0 ? (
        <p
          safe
        >{`${p.skippedAnonymous} member(s) were skipped because they have no value for the mapped id property (anonymous users).`}</p>
      ) : (
        ''
      )}
      {p.page.records.length === 0 ? (
        <p class="muted">{p.paged ? 'No more records.' : 'No records with this outcome.'}</p>
      ) : (
        <table>
          <TableHead
            cols={['External id', 'Change', 'Outcome', 'Status', 'Message', { label: 'Attempts', num: true }, 'At']}
          />
          <tbody>
            {p.page.records.map((x) => (
              <tr>
                <td>
                  <code safe>{x.external_id}</code>
                </td>
                <td safe>{x.operation}</td>
                <td>
                  <Badge status={x.outcome} />
                </td>
                <td safe>{x.status === null ? '—' : String(x.status)}</td>
                <td safe>
                  {x.message ??
                    (x.outcome === 'not_found' ? 'user not in OneSignal (retried at the next reconcile)' : '—')}
                </td>
                <Num n={x.attempts} />
                <td safe>{x.at ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p class="actions">
        {p.paged ? <a href={recordsHref(p.runId, { outcome: p.outcome })}>First page</a> : ''}
        {p.page.next_cursor ? (
          <a href={recordsHref(p.runId, { outcome: p.outcome, cursor: p.page.next_cursor })} rel="next">
            Next {RECORDS_PER_PAGE}
          </a>
        ) : (
          ''
        )}
      </p>
    </section>
  );
}
