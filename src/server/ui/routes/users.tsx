import { Readable } from 'node:stream';
import { z } from 'zod';
import { AmpError } from '../../../errors';
import { EXPORT_FORMATS, exportRunRecords, RECORD_OUTCOMES } from '../../../sync/record-reads';
import { getRunRow } from '../../../sync/runs';
import { showUser } from '../../../sync/user-history';
import { html, parseId, queryOf, type UiRoutes, userFacing } from '../http';
import { UserPage } from '../pages/users';

const exportQuery = z.object({
  format: z.enum(EXPORT_FORMATS).default('csv'),
  outcome: z.enum(RECORD_OUTCOMES).optional(),
});

/** The user search page, and the download of a run's records (the run page links to it). */
export const userRoutes: UiRoutes = (ui, deps) => {
  const { ctx } = deps;
  ui.get('/users', async (req, reply) => {
    const q = (queryOf(req).external_id ?? '').trim();
    if (!q) return html(reply, <UserPage />);
    try {
      return html(reply, <UserPage query={q} user={await showUser(ctx, q)} />);
    } catch (e) {
      const err = userFacing(e);
      return html(reply, <UserPage query={q} error={err.message} />, err.httpStatus);
    }
  });

  ui.get('/runs/:id/records/export', async (req, reply) => {
    const id = parseId(req);
    const q = exportQuery.safeParse(queryOf(req));
    if (!q.success) throw new AmpError('invalid_input', 'format must be csv or ndjson; outcome one of the outcomes');
    await getRunRow(ctx, id);
    const { format, outcome } = q.data;
    return reply
      .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
      .header('content-disposition', `attachment; filename="${id}-records.${format}"`)
      .send(Readable.from(exportRunRecords(ctx, id, format, outcome ? { outcome } : {})));
  });
};
