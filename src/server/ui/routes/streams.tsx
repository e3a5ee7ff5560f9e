import { readDeadLetters, readStream, readStreams } from '../../api/queries';
import { html, parseId, type UiRoutes } from '../http';
import { DeadLettersPage } from '../pages/dead-letters';
import { StreamsPage } from '../pages/streams';

export const streamRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/streams', async (_req, reply) => html(reply, <StreamsPage streams={await readStreams(ctx)} />));

  ui.get('/streams/:id/dead-letters', async (req, reply) => {
    const id = parseId(req);
    const stream = await readStream(ctx, id);
    const letters = await readDeadLetters(ctx, { streamId: id, limit: 500 });
    return html(reply, <DeadLettersPage stream={stream} letters={letters} />);
  });
};
