import { CADENCES } from '../../../sync/cadence';
import type { VerificationView } from '../../../sync/verify';
import type { RunRead, SyncRead } from '../../api/queries';
import { SeriesChart } from '../charts';
import { Badge, type Column, Field, fmtTime, Num, TableHead } from '../layout';
import {
  ConfirmPage,
  DangerZone,
  Fact,
  Facts,
  FormPage,
  formFields,
  ObjectPage,
  PostButton,
  SelectField,
  SettingsCard,
} from '../parts';
import { VerificationPanel } from './verify';

export const SYNC_FORM_FIELDS = [
  'cohort_id',
  'destination_id',
  'cadence',
  'guard_threshold',
  'tag_value',
  'segment_name',
  'reuse_segment_id',
] as const;
export const SYNC_EDIT_FIELDS = ['cadence', 'guard_threshold'] as const;
export type SyncFormValues = Partial<Record<(typeof SYNC_FORM_FIELDS)[number], string | undefined>>;

const CADENCE_HINT =
  "manual: only when you press Run now; once: one run, now; hourly, daily: on that schedule; realtime: pushed by Amplitude's cohort webhook, with a daily reconcile. Each scheduled run is one download from the source's monthly budget.";

const TAG_VALUES = [
  { value: 'presence', label: '"1" while the user is a member' },
  { value: 'entered_at', label: 'the Unix time the user entered (for time-elapsed segment filters)' },
];

function CadenceField(p: { value?: string | undefined; error?: string | undefined }): JSX.Element {
  return (
    <SelectField
      name="cadence"
      label="Cadence"
      options={CADENCES}
      value={p.value}
      error={p.error}
      hint={CADENCE_HINT}
    />
  );
}

function GuardField(p: { value?: string | undefined; error?: string | undefined }): JSX.Element {
  return (
    <Field
      name="guard_threshold"
      label="Removal guard (share of confirmed members)"
      type="number"
      step="0.01"
      value={p.value}
      error={p.error}
      hint="A run that would remove more than this share of the members OneSignal confirmed waits for your approval. 0.5 = 50%."
    />
  );
}

/** The guard threshold as the form sends it: empty is "the default", a number is a number, anything else goes as typed for zod to name. */
export function guardOf(v: string | undefined): number | string | undefined {
  const t = v?.trim();
  if (!t) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

export function NewSyncPage(p: {
  cohorts: Array<{ id: string; name: string }>;
  destinations: Array<{ id: string; name: string }>;
  values: SyncFormValues;
  errors: Record<string, string>;
  formError?: string | undefined;
}): JSX.Element {
  const v = p.values;
  const e = p.errors;
  const f = formFields(v, e);
  if (p.cohorts.length === 0 || p.destinations.length === 0)
    return (
      <ObjectPage title="Sync a cohort to OneSignal" heading="Sync a cohort to OneSignal" nav="cohorts">
        <p class="card">
          A sync needs a cohort and a destination: <a href="/cohorts">import or list a cohort</a> and{' '}
          <a href="/destinations/new">add a OneSignal destination</a> first.
        </p>
      </ObjectPage>
    );
  return (
    <FormPage
      title="Sync a cohort to OneSignal"
      nav="cohorts"
      action="/syncs"
      submit="Create sync"
      label="New sync"
      cancelHref="/cohorts"
      formError={p.formError}
      intro={
        <p class="muted">
          Each member of the cohort gets a OneSignal tag, and a segment filters on it; a run adds the tag to new members
          and removes it from those who left.
        </p>
      }
    >
      <SelectField
        name="cohort_id"
        label="Cohort"
        options={p.cohorts.map((c) => ({ value: c.id, label: `${c.name} (${c.id})` }))}
        value={v.cohort_id}
        error={e.cohort_id}
      />
      <SelectField
        name="destination_id"
        label="OneSignal destination"
        options={p.destinations.map((d) => ({ value: d.id, label: d.name }))}
        value={v.destination_id}
        error={e.destination_id}
      />
      <CadenceField value={v.cadence ?? 'manual'} error={e.cadence} />
      <GuardField value={v.guard_threshold ?? '0.5'} error={e.guard_threshold} />
      <f.Select name="tag_value" label="Tag value" options={TAG_VALUES} initial="presence" />
      <f.Input
        name="segment_name"
        label="Segment name (optional)"
        hint="Empty: the cohort's name. OneSignal refuses a name one of its segments already has."
      />
      <f.Input name="reuse_segment_id" label="Reuse an existing OneSignal segment (optional id)" />
    </FormPage>
  );
}

const STATUS_NOTES: Record<string, string> = {
  paused: ' no run starts until it is resumed; tags stay as they are',
  deleting: ' being deleted: some tag removals were not delivered yet; delete it again to finish',
};

export function SyncPage(p: {
  sync: SyncRead;
  runs: RunRead[];
  verification?: VerificationView | null;
  notice?: string | undefined;
  error?: string | undefined;
  values?: SyncFormValues;
  errors?: Record<string, string>;
  /** A run was asked for at this time (queued, or running): the history follows it until it ends. */
  waitingSince?: number | undefined;
}): JSX.Element {
  const s = p.sync;
  const base = `/syncs/${encodeURIComponent(s.id)}`;
  const v = p.values ?? { cadence: s.cadence, guard_threshold: String(s.guard_threshold) };
  const e = p.errors ?? {};
  const paused = s.status === 'paused';
  return (
    <ObjectPage
      title={`Sync ${s.cohort_name ?? s.cohort_id}`}
      heading={`Sync: ${s.cohort_name ?? s.cohort_id} → ${s.destination_name ?? s.destination_id}`}
      nav="overview"
      notice={p.notice}
      error={p.error}
    >
      <section class="card">
        <Facts>
          <Fact label="Status">
            <Badge status={s.status} />
            <span class="muted" safe>
              {STATUS_NOTES[s.status] ?? ''}
            </span>
          </Fact>
          <Fact label="Cohort">
            <a href="/cohorts" safe>
              {s.cohort_name ?? s.cohort_id}
            </a>{' '}
            <code class="muted" safe>
              {s.cohort_id}
            </code>
          </Fact>
          <Fact label="Destination">
            <a href={`/destinations/${encodeURIComponent(s.destination_id)}`} safe>
              {s.destination_name ?? s.destination_id}
            </a>
          </Fact>
          <Fact label="Cadence" text={s.cadence} />
          <Fact label="OneSignal tag key" code={s.tag_key} />
          <Fact
            label="Tag value"
            text={s.tag_value === 'entered_at' ? 'the Unix time the user entered the cohort' : '"1"'}
          />
          <Fact label="Segment" text={s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : null)} />
          <Fact label="Next scheduled run" text={fmtTime(s.next_run_at)} />
          <Fact
            label="Removal guard"
            text={`a run that would remove more than ${Math.round(s.guard_threshold * 100)}% of the confirmed members waits for approval`}
          />
        </Facts>
        <div class="actions">
          {s.status === 'deleting' ? (
            <a class="button danger" href={`${base}/delete`}>
              Finish deleting…
            </a>
          ) : paused ? (
            <PostButton action={`${base}/resume`} label="Resume sync" />
          ) : (
            <>
              <PostButton action={`${base}/run`} label="Run now" />
              <PostButton action={`${base}/run`} label="Dry run" secondary fields={{ dry_run: 'true' }} />
              <PostButton action={`${base}/pause`} label="Pause sync" secondary />
            </>
          )}
        </div>
      </section>
      <VerificationPanel syncId={s.id} last={p.verification ?? null} />
      <section class="card" aria-labelledby="chart-title">
        <h2 id="chart-title">Members, additions and removals per run</h2>
        <RunsChart runs={p.runs} />
      </section>
      <RunHistory syncId={s.id} runs={p.runs} waitingSince={p.waitingSince} />
      <SettingsCard action={`${base}/edit`}>
        <CadenceField value={v.cadence} error={e.cadence} />
        <GuardField value={v.guard_threshold} error={e.guard_threshold} />
      </SettingsCard>
      <DangerZone noun="sync" href={`${base}/delete`}>
        <p>Deleting the sync removes its tag from the users OneSignal confirmed it on, and its segment.</p>
      </DangerZone>
    </ObjectPage>
  );
}

/** The run page has every counter; the history keeps the ones that tell runs apart, so it fits a laptop screen. */
const HISTORY_COUNTERS = [
  ['members', 'Members'],
  ['added', 'Added'],
  ['removed', 'Removed'],
  ['delivered', 'Delivered'],
  ['not_found', 'Not found'],
  ['failed', 'Failed'],
  ['pending', 'Pending'],
] as const;

const shortTime = (ms: number) => new Date(ms).toISOString().slice(5, 16).replace('T', ' ');

/** Real runs (not dry runs), oldest first: members as a line, additions and removals as bars. */
function RunsChart(p: { runs: RunRead[] }): JSX.Element {
  const runs = p.runs
    .filter((r) => !r.dry_run && r.status !== 'running')
    .slice(0, 30)
    .reverse();
  return (
    <SeriesChart
      title="Members, additions and removals per run"
      xLabels={runs.map((r) => shortTime(r.started_at))}
      empty="No finished run yet: the chart starts with the first one."
      series={[
        { label: 'Added', cls: 's-added', kind: 'bar', values: runs.map((r) => r.added) },
        { label: 'Removed', cls: 's-removed', kind: 'bar', values: runs.map((r) => r.removed) },
        { label: 'Members', cls: 's-members', kind: 'line', level: true, values: runs.map((r) => r.members) },
      ]}
    />
  );
}

export function DeleteSyncPage(p: { sync: SyncRead; error?: string | undefined }): JSX.Element {
  const s = p.sync;
  const base = `/syncs/${encodeURIComponent(s.id)}`;
  return (
    <ConfirmPage
      title={`Delete the sync of ${s.cohort_name ?? s.cohort_id}?`}
      nav="overview"
      action={`${base}/delete`}
      confirmLabel="Delete sync"
      cancelHref={base}
      danger
      error={p.error}
    >
      <ul>
        <li>
          The tag <code safe>{s.tag_key}</code> is removed from every user OneSignal confirmed it on (
          <span safe>{s.destination_name ?? s.destination_id}</span>).
        </li>
        <li safe>
          {s.segment_id ? `Its OneSignal segment (${s.segment_id}) is deleted.` : 'It has no OneSignal segment.'}
        </li>
        <li>Its run history is deleted. The cohort itself stays.</li>
      </ul>
    </ConfirmPage>
  );
}

/**
 * The run history. While a run asked for is queued or running it re-fetches itself every two
 * seconds (htmx); once that run has ended the answer has htmx reload the page (chart included).
 */
export function RunHistory(p: { syncId: string; runs: RunRead[]; waitingSince?: number | undefined }): JSX.Element {
  const polling =
    p.waitingSince === undefined
      ? {}
      : {
          'hx-get': `/syncs/${encodeURIComponent(p.syncId)}/history?since=${p.waitingSince}`,
          'hx-trigger': 'every 2s',
          'hx-swap': 'outerHTML',
        };
  return (
    <div id="run-history" {...polling}>
      <h2>Run history</h2>
      {p.waitingSince === undefined ? (
        ''
      ) : (
        <p class="muted">A run is queued or running: this list updates by itself.</p>
      )}
      {p.runs.length === 0 ? (
        <p class="card">No runs yet.</p>
      ) : (
        <div class="table-wrap">
          <table>
            <TableHead
              cols={[
                'Started',
                'Status',
                'Trigger',
                ...HISTORY_COUNTERS.map(([, label]): Column => ({ label, num: true })),
              ]}
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
                  {HISTORY_COUNTERS.map(([k]) => (
                    <Num n={r[k]} />
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

/** Whether the run asked for at `since` has ended (a run started then or later, no longer running). */
export function runAskedForEnded(runs: RunRead[], since: number): boolean {
  const newest = runs[0];
  return newest !== undefined && newest.started_at >= since - 1000 && newest.status !== 'running';
}
