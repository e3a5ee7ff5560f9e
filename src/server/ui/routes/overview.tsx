import { getConnector } from '../../../connectors/catalog';
import { readDestinations, readStreams, readSyncs } from '../../api/queries';
import { html, type UiRoutes } from '../http';
import { CatalogPage } from '../pages/catalog';
import { OverviewPage } from '../pages/overview';

export const overviewRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/', async (_req, reply) => {
    const [destinations, syncs, streams] = await Promise.all([readDestinations(ctx), readSyncs(ctx), readStreams(ctx)]);
    return html(reply, <OverviewPage destinations={destinations} syncs={syncs} streams={streams} />);
  });

  ui.get('/catalog', async (_req, reply) => html(reply, <CatalogPage oneSignal={getConnector('onesignal')} />));
};
