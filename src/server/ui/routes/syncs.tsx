import { removeSync } from '../../../app/syncs';
import { toAmpError } from '../../../errors';
import type { Context } from '../../../store';
import { listVerifications } from '../../../sync/verify';
import { createSyncAction, runSyncAction } from '../../api/actions';
import { readRunsOfSync, readSync } from '../../api/queries';
import { formErrors, formOf, html, parseId, queryOf, type UiRoutes } from '../http';
import { DeleteSyncPage, RunHistory, runAskedForEnded, SyncPage } from '../pages/sync';
import { cohortsPage } from './cohorts';

async function syncPage(
  ctx: Context,
  id: string,
  extra: { notice?: string | undefined; error?: string; waitingSince?: number | undefined } = {},
) {
  const [sync, runs, verifications] = await Promise.all([
    readSync(ctx, id),
    readRunsOfSync(ctx, id, { limit: 50 }),
    listVerifications(ctx, id, 1),
  ]);
  return <SyncPage sync={sync} runs={runs} verification={verifications[0] ?? null} {...extra} />;
}

export const syncRoutes: UiRoutes = (ui, deps) => {
  const { ctx } = deps;
  ui.post('/syncs', async (req, reply) => {
    const form = formOf(req);
    try {
      const sync = await createSyncAction(ctx, {
        cohort_id: form.cohort_id,
        destination_id: form.destination_id,
        cadence: form.cadence,
        ...(form.tag_value ? { tag_value: form.tag_value } : {}),
      });
      return reply.redirect(`/syncs/${encodeURIComponent(sync.id)}?created=1`, 303);
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal') throw err;
      const field = /cadence/i.test(err.message) ? 'cadence' : 'destination_id';
      const page = await cohortsPage(ctx, {
        error: { cohortId: form.cohort_id ?? '', field, message: err.message },
        values: {
          cohort_id: form.cohort_id,
          destination_id: form.destination_id,
          cadence: form.cadence,
          tag_value: form.tag_value,
        },
      });
      return html(reply, page, err.httpStatus);
    }
  });

  ui.get('/syncs/:id', async (req, reply) => {
    const q = queryOf(req);
    const id = parseId(req);
    const runs = await readRunsOfSync(ctx, id, { limit: 1 });
    // Follow a queued run until it has ended (then the page is not asked to poll again).
    const queuedAt = Number(q.queued);
    const queued = Number.isFinite(queuedAt) && queuedAt > 1 && !runAskedForEnded(runs, queuedAt);
    const running = runs[0]?.status === 'running' ? runs[0].started_at : undefined;
    const waitingSince = queued ? queuedAt : running;
    const notice = q.created
      ? 'Sync created. Run it now, or let its cadence run it.'
      : queued
        ? 'Run queued: a worker starts it; the history below follows it.'
        : undefined;
    return html(reply, await syncPage(ctx, id, { notice, waitingSince }));
  });

  ui.post('/syncs/:id/run', async (req, reply) => {
    const id = parseId(req);
    const dryRun = formOf(req).dry_run === 'true';
    try {
      const r = await runSyncAction(deps, id, { dry_run: dryRun });
      if (r.body.run) return reply.redirect(`/runs/${encodeURIComponent(r.body.run.id)}`, 303);
      return reply.redirect(`/syncs/${encodeURIComponent(id)}?queued=${Date.now()}`, 303);
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal' || err.code === 'not_found') throw err;
      return html(reply, await syncPage(ctx, id, { error: err.message }), err.httpStatus);
    }
  });

  ui.get('/syncs/:id/delete', async (req, reply) =>
    html(reply, <DeleteSyncPage sync={await readSync(ctx, parseId(req))} />),
  );

  ui.post('/syncs/:id/delete', async (req, reply) => {
    const id = parseId(req);
    const sync = await readSync(ctx, id);
    if (formOf(req).confirm !== 'yes') return html(reply, <DeleteSyncPage sync={sync} />, 400);
    try {
      const r = await removeSync(ctx, id);
      if (!r.deleted) {
        const message = `${r.pending} tag removal(s) are still pending at OneSignal; the sync stays until they are delivered: delete it again later.`;
        return html(reply, <DeleteSyncPage sync={sync} error={message} />, 409);
      }
      const q = new URLSearchParams({ deleted: sync.cohort_name ?? sync.cohort_id, removed: String(r.removed) });
      if (r.segment_error) q.set('segment_error', r.segment_error);
      return reply.redirect(`/cohorts?${q}`, 303);
    } catch (e) {
      const r = formErrors(e, []);
      return html(reply, <DeleteSyncPage sync={sync} error={r.message} />, r.status);
    }
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
