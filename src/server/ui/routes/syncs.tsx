import { addSync, pauseSync, removeSync, resumeSync, startRun, updateSync } from '../../../app/syncs';
import type { Context } from '../../../store';
import { listVerifications } from '../../../sync/verify';
import { readCohorts, readDestinations, readRunsOfSync, readSync } from '../../api/queries';
import {
  confirmed,
  formErrors,
  formOf,
  html,
  optional,
  parseId,
  pathOf,
  queryOf,
  type UiRoutes,
  userFacing,
} from '../http';
import {
  DeleteSyncPage,
  guardOf,
  NewSyncPage,
  RunHistory,
  runAskedForEnded,
  SYNC_EDIT_FIELDS,
  SYNC_FORM_FIELDS,
  type SyncFormValues,
  SyncPage,
} from '../pages/sync';

const NOTICES: Record<string, string> = {
  saved: 'Changes saved.',
  paused: 'Sync paused: no run starts until you resume it; the tags stay as they are.',
  resumed: 'Sync resumed: its cadence runs it again.',
};

type PageExtra = Omit<Parameters<typeof SyncPage>[0], 'sync' | 'runs' | 'verification'>;

async function syncPage(ctx: Context, id: string, extra: PageExtra = {}) {
  const [sync, runs, verifications] = await Promise.all([
    readSync(ctx, id),
    readRunsOfSync(ctx, id, { limit: 50 }),
    listVerifications(ctx, id, 1),
  ]);
  return <SyncPage sync={sync} runs={runs} verification={verifications[0] ?? null} {...extra} />;
}

export const syncRoutes: UiRoutes = (ui, deps) => {
  const { ctx } = deps;
  const newSyncPage = async (values: SyncFormValues, errors: Record<string, string> = {}, formError?: string) => {
    const [cohorts, destinations] = await Promise.all([readCohorts(ctx), readDestinations(ctx)]);
    return (
      <NewSyncPage
        cohorts={cohorts}
        destinations={destinations}
        values={values}
        errors={errors}
        formError={formError}
      />
    );
  };

  ui.get('/syncs/new', async (req, reply) => {
    const q = queryOf(req);
    return html(reply, await newSyncPage({ cohort_id: q.cohort_id, destination_id: q.destination_id }));
  });

  ui.post('/syncs', async (req, reply) => {
    const form = formOf(req);
    const values: SyncFormValues = Object.fromEntries(SYNC_FORM_FIELDS.map((f) => [f, form[f]]));
    const input = Object.fromEntries(
      Object.entries({
        cohort_id: form.cohort_id ?? '',
        destination_id: form.destination_id ?? '',
        cadence: optional(form.cadence),
        guard_threshold: guardOf(form.guard_threshold),
        tag_value: optional(form.tag_value),
        segment_name: optional(form.segment_name),
        reuse_segment_id: optional(form.reuse_segment_id),
      }).filter(([, v]) => v !== undefined),
    );
    try {
      // addSync validates with syncInputSchema: its issues come back by field.
      const sync = await addSync(ctx, input);
      return reply.redirect(pathOf('syncs', sync.id, '?created=1'), 303);
    } catch (e) {
      const r = formErrors(e, SYNC_FORM_FIELDS);
      return html(reply, await newSyncPage(values, r.fields, r.message), r.status);
    }
  });

  ui.post('/syncs/:id/edit', async (req, reply) => {
    const id = parseId(req);
    const form = formOf(req);
    const values: SyncFormValues = { cadence: form.cadence, guard_threshold: form.guard_threshold };
    const patch = Object.fromEntries(
      Object.entries({ cadence: optional(form.cadence), guard_threshold: guardOf(form.guard_threshold) }).filter(
        ([, v]) => v !== undefined,
      ),
    );
    try {
      await updateSync(ctx, id, patch);
      return reply.redirect(pathOf('syncs', id, '?done=saved'), 303);
    } catch (e) {
      const r = formErrors(e, SYNC_EDIT_FIELDS);
      return html(reply, await syncPage(ctx, id, { values, errors: r.fields, error: r.message }), r.status);
    }
  });

  for (const [verb, op] of [
    ['pause', pauseSync],
    ['resume', resumeSync],
  ] as const) {
    ui.post(`/syncs/:id/${verb}`, async (req, reply) => {
      const id = parseId(req);
      try {
        await op(ctx, id);
        return reply.redirect(pathOf('syncs', id, `?done=${verb}d`), 303);
      } catch (e) {
        const r = formErrors(e, []);
        return html(reply, await syncPage(ctx, id, { error: r.message }), r.status);
      }
    });
  }

  ui.get('/syncs/:id', async (req, reply) => {
    const q = queryOf(req);
    const id = parseId(req);
    const runs = await readRunsOfSync(ctx, id, { limit: 1 });
    // A run in progress: the history follows it until it has ended.
    const waitingSince = runs[0]?.status === 'running' ? runs[0].started_at : undefined;
    const notice = q.created
      ? 'Sync created. Run it now, or let its cadence run it.'
      : q.done
        ? NOTICES[q.done]
        : undefined;
    return html(reply, await syncPage(ctx, id, { notice, waitingSince }));
  });

  ui.post('/syncs/:id/run', async (req, reply) => {
    const id = parseId(req);
    const dryRun = formOf(req).dry_run === 'true';
    try {
      // The API's run: the run page then follows it until it ends.
      const r = await startRun(ctx, id, { dryRun, ...(deps.jobs ? { jobs: deps.jobs } : {}) });
      return reply.redirect(`/runs/${encodeURIComponent(r.run_id)}`, 303);
    } catch (e) {
      const err = userFacing(e);
      return html(reply, await syncPage(ctx, id, { error: err.message }), err.httpStatus);
    }
  });

  ui.get('/syncs/:id/delete', async (req, reply) =>
    html(reply, <DeleteSyncPage sync={await readSync(ctx, parseId(req))} />),
  );

  ui.post('/syncs/:id/delete', async (req, reply) => {
    const sync = await readSync(ctx, parseId(req));
    return confirmed(
      req,
      reply,
      async (error) => <DeleteSyncPage sync={sync} error={error} />,
      async () => {
        const r = await removeSync(ctx, sync.id);
        if (!r.deleted)
          return {
            refused: `${r.pending} tag removal(s) are still pending at OneSignal; the sync stays until they are delivered: delete it again later.`,
          };
        const q = new URLSearchParams({ deleted: sync.cohort_name ?? sync.cohort_id, removed: String(r.removed) });
        if (r.segment_error) q.set('segment_error', r.segment_error);
        if (r.segment_deleted) q.set('segment', r.segment_deleted);
        return `/cohorts?${q}`;
      },
    );
  });

  ui.get('/syncs/:id/history', async (req, reply) => {
    const id = parseId(req);
    const since = Number(queryOf(req).since);
    const runs = await readRunsOfSync(ctx, id, { limit: 50 });
    if (!Number.isFinite(since) || runAskedForEnded(runs, since)) {
      void reply.header('hx-refresh', 'true');
      return html(reply, <RunHistory syncId={id} runs={runs} />);
    }
    return html(reply, <RunHistory syncId={id} runs={runs} waitingSince={since} />);
  });
};
