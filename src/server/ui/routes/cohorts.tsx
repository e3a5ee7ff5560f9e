import { z } from 'zod';
import { cohortIdSchema, cohortNameSchema, deleteCohort, importCohort } from '../../../app/cohorts';
import { listSources } from '../../../app/sources';
import { AmpError } from '../../../errors';
import type { Context } from '../../../store';
import { readCohorts, readDestination, readDestinations, readSyncs } from '../../api/queries';
import { idParam } from '../../api/schemas';
import { confirmed, fieldErrors, html, parseId, queryOf, type UiRoutes, userFacing } from '../http';
import { DeleteCohortPage } from '../pages/cohort-delete';
import { CohortsPage } from '../pages/cohorts';

type CohortsExtra = Partial<Parameters<typeof CohortsPage>[0]>;

export async function cohortsPage(ctx: Context, extra: CohortsExtra = {}): Promise<JSX.Element> {
  const [cohorts, destinations, syncs, sources] = await Promise.all([
    readCohorts(ctx),
    readDestinations(ctx),
    readSyncs(ctx),
    listSources(ctx),
  ]);
  return (
    <CohortsPage
      cohorts={cohorts}
      destinations={destinations}
      syncs={syncs}
      sources={sources.map((s) => ({ id: s.id, name: s.name }))}
      {...extra}
    />
  );
}

// The rules of `cohort import` (an empty id: a new one).
const importFields = z.object({
  name: cohortNameSchema,
  id: z.union([z.literal(''), cohortIdSchema]),
});

/** Uploads only: a cohort file may be large, every other UI form is small. */
const IMPORT_BODY_LIMIT = 256 * 1024 * 1024;

export const cohortRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/cohorts', async (req, reply) => {
    const q = queryOf(req);
    const created = q.created;
    let notice: string | undefined;
    if (q.refreshed) notice = `${q.refreshed} cohort(s) of ${q.source ?? 'the source'} listed from Amplitude.`;
    if (q.imported)
      notice = `Cohort "${q.name ?? q.imported}" imported: ${q.members ?? 0} member(s) (${q.blank ?? 0} blank and ${q.duplicates ?? 0} duplicate row(s) skipped). Sync it below.`;
    if (q.cohort_deleted) notice = `Cohort "${q.cohort_deleted}" deleted with its ${q.members ?? 0} member(s).`;
    if (q.deleted) {
      const segment = q.segment_error
        ? ` Its segment could not be deleted: ${q.segment_error}`
        : q.segment
          ? ` Its OneSignal segment ${q.segment} was deleted.`
          : '';
      notice = `Sync of "${q.deleted}" deleted; its tag was removed from ${q.removed ?? 0} user(s).${segment}`;
    }
    if (typeof created === 'string' && idParam.safeParse({ id: created }).success) {
      const d = await readDestination(ctx, created).catch(() => undefined);
      if (d) notice = `Destination "${d.name}" saved. Pick a cohort below to sync to it.`;
    }
    return html(reply, await cohortsPage(ctx, { notice, selectedDestination: created }));
  });

  const deletePage = async (id: string, error?: string) => {
    const [cohorts, syncs] = await Promise.all([readCohorts(ctx), readSyncs(ctx)]);
    const cohort = cohorts.find((c) => c.id === id);
    if (!cohort) throw new AmpError('not_found', `cohort ${id} not found`);
    return <DeleteCohortPage cohort={cohort} syncs={syncs.filter((s) => s.cohort_id === id)} error={error} />;
  };

  ui.get('/cohorts/:id/delete', async (req, reply) => html(reply, await deletePage(parseId(req))));

  ui.post('/cohorts/:id/delete', async (req, reply) => {
    const id = parseId(req);
    return confirmed(
      req,
      reply,
      (error) => deletePage(id, error),
      async () => {
        const name = (await readCohorts(ctx)).find((c) => c.id === id)?.name ?? id;
        const r = await deleteCohort(ctx, id);
        return `/cohorts?${new URLSearchParams({ cohort_deleted: name, members: String(r.members) })}`;
      },
    );
  });

  // Its own scope: the multipart parser and its size limit apply to this one route.
  void ui.register(async (scope) => {
    scope.addContentTypeParser(
      'multipart/form-data',
      { parseAs: 'buffer', bodyLimit: IMPORT_BODY_LIMIT },
      (req, body, done) => {
        new Response(body as Buffer, { headers: { 'content-type': String(req.headers['content-type']) } })
          .formData()
          .then(
            (f) => done(null, f),
            () => done(new AmpError('invalid_input', 'the upload is not a readable form'), undefined),
          );
      },
    );

    scope.post('/cohorts/import', async (req, reply) => {
      const form = req.body instanceof FormData ? req.body : new FormData();
      const text = (k: string) => {
        const v = form.get(k);
        return typeof v === 'string' ? v : '';
      };
      const values = { name: text('name'), id: text('id'), ids: text('ids') };
      const file = form.get('file');
      const upload = file instanceof File && file.size > 0 ? file : undefined;
      const errors: Record<string, string> = {};
      const parsed = importFields.safeParse(values);
      if (!parsed.success) Object.assign(errors, fieldErrors(parsed.error));
      if (!upload && !values.ids.trim()) errors.ids = 'paste the member ids, or choose a file';
      if (upload && values.ids.trim()) errors.ids = 'paste ids or choose a file, not both';
      if (!parsed.success || errors.ids)
        return html(reply, await cohortsPage(ctx, { importForm: { values, errors } }), 400);
      try {
        const r = await importCohort(
          ctx,
          {
            name: parsed.data.name,
            ...(parsed.data.id ? { id: parsed.data.id } : {}),
            csv: upload ? await upload.text() : values.ids,
          },
          { label: upload ? upload.name : 'the pasted ids' },
        );
        const q = new URLSearchParams({
          imported: r.cohort_id,
          name: r.name,
          members: String(r.members),
          blank: String(r.blank),
          duplicates: String(r.duplicates),
        });
        return reply.redirect(`/cohorts?${q}`, 303);
      } catch (e) {
        const err = userFacing(e);
        const message = err.message.replace(/--id\b/, 'id').replace(/--name\b/, 'name');
        return html(reply, await cohortsPage(ctx, { importForm: { values, errors: { _: message } } }), err.httpStatus);
      }
    });
  });
};
