import { toAmpError } from '../../../errors';
import { startVerifyAction } from '../../api/verify';
import { formOf, html, parseId, pathOf, type UiRoutes } from '../http';
import { ErrorPage } from '../pages/error';

/** "Verify now" on a sync's page: starts a verification and goes back to the page, which shows it running. */
export const verifyRoutes: UiRoutes = (ui, deps) => {
  ui.post('/syncs/:id/verify', async (req, reply) => {
    const id = parseId(req);
    const form = formOf(req);
    const sample = form.sample?.trim() ? Number(form.sample) : undefined;
    try {
      await startVerifyAction(deps, id, {
        ...(sample === undefined ? {} : { sample }),
        repair: form.repair === 'true',
      });
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal' || err.code === 'not_found') throw err;
      return html(reply, <ErrorPage title="Verification not started" message={err.message} />, err.httpStatus);
    }
    return reply.redirect(pathOf('syncs', id), 303);
  });
};
