import type { CohortRead, SyncRead } from '../../api/queries';
import { ConfirmPage } from '../parts';

/** `cohort delete`'s confirmation: what goes, or (while syncs use the cohort) which syncs must go first. */
export function DeleteCohortPage(p: {
  cohort: CohortRead;
  syncs: SyncRead[];
  error?: string | undefined;
}): JSX.Element {
  const c = p.cohort;
  const synced = p.syncs.length > 0;
  return (
    <ConfirmPage
      title={`Delete cohort ${c.name}?`}
      nav="cohorts"
      action={`/cohorts/${encodeURIComponent(c.id)}/delete`}
      confirmLabel="Delete cohort"
      cancelHref="/cohorts"
      danger
      error={p.error}
      refusal={
        synced
          ? 'The cohort is synced: delete its sync(s) first (that removes their tags from OneSignal users), then the cohort.'
          : undefined
      }
    >
      {synced ? (
        <ul>
          {p.syncs.map((s) => (
            <li>
              <a href={`/syncs/${encodeURIComponent(s.id)}`} safe>
                {`Sync to ${s.destination_name ?? s.destination_id}`}
              </a>
            </li>
          ))}
        </ul>
      ) : (
        <ul>
          <li safe>{`Its ${c.size ?? 0} stored member(s) are forgotten.`}</li>
          <li>
            {c.origin === 'amplitude'
              ? 'Amplitude keeps the cohort: refreshing the source lists it again.'
              : 'Importing the file again brings it back.'}
          </li>
          <li>OneSignal is not touched: no sync uses it.</li>
        </ul>
      )}
    </ConfirmPage>
  );
}
