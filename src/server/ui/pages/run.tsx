import type { RecordOutcome, RecordPage } from '../../../sync/record-reads';
import type { RunRead, SyncRead } from '../../api/queries';
import { OutcomeBar } from '../charts';
import { Badge, fmtTime, Layout, Notice } from '../layout';
import { ConfirmPage } from '../parts';
import { RunRecordsSection } from './run-records';

export const RUN_COUNTERS = [
  ['members', 'Members'],
  ['added', 'Added'],
  ['removed', 'Removed'],
  ['retried', 'Retried'],
  ['unchanged', 'Unchanged'],
  ['delivered', 'Delivered'],
  ['not_found', 'Not found'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
  ['skipped_anonymous', 'Skipped (no id)'],
  ['requests', 'Requests'],
] as const;

function SampleList(p: { title: string; items: unknown }): JSX.Element {
  if (!Array.isArray(p.items) || p.items.length === 0) return '';
  return (
    <div>
      <h3 safe>{p.title}</h3>
      <ul>
        {p.items.slice(0, 50).map((x) => (
          <li>
            <code safe>{String(x)}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}

/**
 * The part of the run page that changes while the run works: status, counters, outcome bar and
 * the held-run decision. While the run is `running` it asks for itself again every second
 * (htmx); the answer for an ended run tells htmx to reload the whole page instead.
 */
export function RunLive(p: { run: RunRead; sync: SyncRead | null; failedUsers?: number }): JSX.Element {
  const r = p.run;
  const base = `/runs/${encodeURIComponent(r.id)}`;
  const polling =
    r.status === 'running' ? { 'hx-get': `${base}/live`, 'hx-trigger': 'every 1s', 'hx-swap': 'outerHTML' } : {};
  return (
    <div id="run-live" {...polling}>
      <h1>
        Run <code safe>{r.id}</code> <Badge status={r.status} />
      </h1>
      <p>
        {p.sync ? (
          <a href={`/syncs/${encodeURIComponent(p.sync.id)}`} safe>
            {`← ${p.sync.cohort_name ?? p.sync.cohort_id} → ${p.sync.destination_name ?? p.sync.destination_id}`}
          </a>
        ) : (
          ''
        )}{' '}
        <span
          class="muted"
          safe
        >{`${r.trigger}${r.dry_run ? ', dry run' : ''}; started ${fmtTime(r.started_at)}, ${r.finished_at ? `finished ${fmtTime(r.finished_at)}` : 'still working (this page updates by itself)'}`}</span>
      </p>
      {r.error ? <Notice kind="alert" text={`Run error: ${r.error}`} /> : ''}
      {r.status === 'held' ? (
        <section class="card" aria-labelledby="held-title">
          <h2 id="held-title">Held for approval</h2>
          <p safe>{r.hold_reason ?? 'This run would remove many members; it waits for a decision.'}</p>
          <div class="actions">
            <a class="button" href={`${base}/approve`}>
              Approve and deliver…
            </a>
            <a class="button danger" href={`${base}/reject`}>
              Reject…
            </a>
          </div>
        </section>
      ) : (
        ''
      )}
      <RetryCard run={r} failedUsers={p.failedUsers ?? 0} />
      <h2>Outcome</h2>
      <OutcomeBar counts={r} />
      <h2>Counters</h2>
      <dl class="counters">
        {RUN_COUNTERS.map(([k, label]) => (
          <div>
            <dt safe>{label}</dt>
            <dd>{String(r[k])}</dd>
          </div>
        ))}
      </dl>
      <p class="muted">added + removed + retried = delivered + not found + failed + pending</p>
    </div>
  );
}

/** Offered only for a finished run with users whose delivery failed for good (`runs retry`). */
function RetryCard(p: { run: RunRead; failedUsers: number }): JSX.Element {
  const r = p.run;
  if (p.failedUsers === 0 || (r.status !== 'completed' && r.status !== 'failed')) return '';
  return (
    <section class="card" aria-labelledby="retry-title">
      <h2 id="retry-title">Failed deliveries</h2>
      <p
        safe
      >{`${p.failedUsers} user(s) of this run could not be delivered to OneSignal for good. See why below (filter: failed), fix the cause, then try them again.`}</p>
      <div class="actions">
        <a class="button" href={`/runs/${encodeURIComponent(r.id)}/retry`}>
          Retry failed users…
        </a>
      </div>
    </section>
  );
}

export function RunPage(p: {
  run: RunRead;
  sync: SyncRead | null;
  failedUsers?: number;
  records: { page: RecordPage; outcome: RecordOutcome | undefined; paged: boolean };
  notice?: string;
  error?: string;
}): JSX.Element {
  const r = p.run;
  const sample = (r.sample && typeof r.sample === 'object' ? r.sample : {}) as Record<string, unknown>;
  return (
    <Layout title={`Run ${r.id}`} nav="overview">
      <Notice text={p.notice} />
      <Notice kind="alert" text={p.error} />
      <RunLive run={r} sync={p.sync} failedUsers={p.failedUsers ?? 0} />
      <SampleList title="Sample of additions" items={sample.adds} />
      <SampleList title="Sample of removals" items={sample.removes} />
      <RunRecordsSection
        runId={r.id}
        page={p.records.page}
        outcome={p.records.outcome}
        paged={p.records.paged}
        skippedAnonymous={r.skipped_anonymous}
      />
    </Layout>
  );
}

export type RunDecision = 'approve' | 'reject' | 'retry';

const DECISIONS: Record<RunDecision, { title: string; label: string }> = {
  approve: { title: 'Approve and deliver this run?', label: 'Approve and deliver' },
  reject: { title: 'Reject this run?', label: 'Reject run' },
  retry: { title: 'Retry the failed users of this run?', label: 'Retry failed users' },
};

export function DecideRunPage(p: {
  run: RunRead;
  sync: SyncRead | null;
  decision: RunDecision;
  failedUsers?: number;
  error?: string | undefined;
}): JSX.Element {
  const r = p.run;
  const base = `/runs/${encodeURIComponent(r.id)}`;
  const app = p.sync?.destination_name ?? p.sync?.destination_id ?? 'the destination';
  const d = DECISIONS[p.decision];
  return (
    <ConfirmPage
      title={d.title}
      nav="overview"
      action={`${base}/${p.decision}`}
      confirmLabel={d.label}
      cancelHref={base}
      danger={p.decision === 'approve'}
      error={p.error}
    >
      {p.decision === 'retry' ? (
        <p
          safe
        >{`${p.failedUsers ?? 0} user(s) whose delivery to ${app} failed for good are sent again now; the run shows running until they settle.`}</p>
      ) : (
        <p safe>{r.hold_reason ?? 'This run was held for approval.'}</p>
      )}
      {p.decision === 'approve' ? (
        <p
          safe
        >{`Approving delivers the run to ${app} now: ${r.added} user(s) get the cohort tag and ${r.removed} lose it. Tags removed at OneSignal come back only when users re-enter the cohort.`}</p>
      ) : p.decision === 'reject' ? (
        <p safe>{`Rejecting changes nothing at ${app}; the next run computes the cohort again.`}</p>
      ) : (
        ''
      )}
    </ConfirmPage>
  );
}
