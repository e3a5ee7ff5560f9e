import type { Context } from '../../../store';
import { readCohorts, readDestination, readDestinations, readSyncs } from '../../api/queries';
import { idParam } from '../../api/schemas';
import { html, queryOf, type UiRoutes } from '../http';
import { CohortsPage } from '../pages/cohorts';

type CohortsExtra = Partial<Parameters<typeof CohortsPage>[0]>;

export async function cohortsPage(ctx: Context, extra: CohortsExtra = {}): Promise<JSX.Element> {
  const [cohorts, destinations, syncs] = await Promise.all([readCohorts(ctx), readDestinations(ctx), readSyncs(ctx)]);
  return <CohortsPage cohorts={cohorts} destinations={destinations} syncs={syncs} {...extra} />;
}

export const cohortRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/cohorts', async (req, reply) => {
    const q = queryOf(req);
    const created = q.created;
    let notice: string | undefined;
    if (q.deleted) {
      const segment = q.segment_error ? ` Its segment could not be deleted: ${q.segment_error}` : '';
      notice = `Sync of "${q.deleted}" deleted; its tag was removed from ${q.removed ?? 0} user(s).${segment}`;
    }
    if (typeof created === 'string' && idParam.safeParse({ id: created }).success) {
      const d = await readDestination(ctx, created).catch(() => undefined);
      if (d) notice = `Destination "${d.name}" saved. Pick a cohort below to sync to it.`;
    }
    return html(reply, await cohortsPage(ctx, { notice, selectedDestination: created }));
  });
};
