import {
  approve,
  countRetryable,
  RECORD_OUTCOMES,
  type RecordOutcome,
  reject,
  retryFailed,
  runRecords,
} from '../../../app/runs';
import { toAmpError } from '../../../errors';
import type { Context } from '../../../store';
import { readRun, readSync } from '../../api/queries';
import { formOf, html, parseId, queryOf, type UiRoutes } from '../http';
import { DecideRunPage, type RunDecision, RunLive, RunPage } from '../pages/run';
import { RECORDS_PER_PAGE } from '../pages/run-records';

/** The records part of the run page: ?outcome= filters, ?cursor= pages (50 a page). */
async function recordsOf(ctx: Context, id: string, q: Record<string, string | undefined>) {
  const outcome = (RECORD_OUTCOMES as readonly string[]).includes(q.outcome ?? '')
    ? (q.outcome as RecordOutcome)
    : undefined;
  const cursor = q.cursor || undefined;
  const page = await runRecords(ctx, id, {
    limit: RECORDS_PER_PAGE,
    ...(outcome ? { outcome } : {}),
    ...(cursor ? { cursor } : {}),
  });
  return { page, outcome, paged: cursor !== undefined };
}

async function runPage(
  ctx: Context,
  id: string,
  extra: { notice?: string; error?: string } = {},
  q: Record<string, string | undefined> = {},
) {
  const run = await readRun(ctx, id);
  const [sync, records, failedUsers] = await Promise.all([
    readSync(ctx, run.sync_id).catch(() => null),
    recordsOf(ctx, id, q),
    countRetryable(ctx, id),
  ]);
  return <RunPage run={run} sync={sync} records={records} failedUsers={failedUsers} {...extra} />;
}

export const runRoutes: UiRoutes = (ui, deps) => {
  const { ctx } = deps;
  ui.get('/runs/:id', async (req, reply) => {
    const q = queryOf(req);
    const notice =
      q.decided === 'approve'
        ? 'Run approved.'
        : q.decided === 'reject'
          ? 'Run rejected; nothing was changed.'
          : q.decided === 'retry'
            ? `${q.requeued ?? 'The'} failed user(s) re-queued for delivery.`
            : undefined;
    return html(reply, await runPage(ctx, parseId(req), { notice }, queryOf(req)));
  });

  ui.get('/runs/:id/live', async (req, reply) => {
    const id = parseId(req);
    const run = await readRun(ctx, id);
    const sync = await readSync(ctx, run.sync_id).catch(() => null);
    // An ended run changes more than this part (its records): have htmx reload the page.
    if (run.status !== 'running') void reply.header('hx-refresh', 'true');
    return html(reply, <RunLive run={run} sync={sync} failedUsers={await countRetryable(ctx, id)} />);
  });

  const decidePage = async (id: string, decision: RunDecision, error?: string) => {
    const run = await readRun(ctx, id);
    const sync = await readSync(ctx, run.sync_id).catch(() => null);
    const failedUsers = await countRetryable(ctx, id);
    return <DecideRunPage run={run} sync={sync} decision={decision} failedUsers={failedUsers} error={error} />;
  };

  // Deliveries are the job queue's when the server runs one, inline otherwise.
  const decide = async (id: string, decision: RunDecision): Promise<string> => {
    if (decision === 'approve') await approve(ctx, id, { jobs: deps.jobs });
    else if (decision === 'reject') await reject(ctx, id);
    else return `&requeued=${(await retryFailed(ctx, id, { jobs: deps.jobs })).requeued}`;
    return '';
  };

  for (const decision of ['approve', 'reject', 'retry'] as const) {
    ui.get(`/runs/:id/${decision}`, async (req, reply) => html(reply, await decidePage(parseId(req), decision)));

    ui.post(`/runs/:id/${decision}`, async (req, reply) => {
      const id = parseId(req);
      // Only the confirmation page's own button decides.
      if (formOf(req).confirm !== 'yes') return html(reply, await decidePage(id, decision), 400);
      try {
        const more = await decide(id, decision);
        return reply.redirect(`/runs/${encodeURIComponent(id)}?decided=${decision}${more}`, 303);
      } catch (e) {
        const err = toAmpError(e);
        if (err.kind === 'internal' || err.code === 'not_found') throw err;
        return html(reply, await runPage(ctx, id, { error: err.message }), err.httpStatus);
      }
    });
  }
};
