import {
  addDestination,
  deleteDestination,
  pauseDestination,
  resumeDestination,
  testDestination,
  testDestinationSettings,
  updateDestination,
} from '../../../app/destinations';
import { listSources } from '../../../app/sources';
import { toAmpError } from '../../../errors';
import type { Context } from '../../../store';
import { readDestination, readDestinations, readSyncs } from '../../api/queries';
import {
  confirmed,
  type Form,
  formErrors,
  formOf,
  html,
  optional,
  parseId,
  pathOf,
  queryOf,
  type UiRoutes,
} from '../http';
import {
  DESTINATION_EDIT_FIELDS,
  DeleteDestinationPage,
  type DestinationFormValues,
  DestinationPage,
  DestinationsPage,
  NewDestinationPage,
  TestResult,
} from '../pages/destinations';

async function sourceChoices(ctx: Context) {
  return (await listSources(ctx)).map((s) => ({ id: s.id, name: s.name }));
}

type PageExtra = Omit<Parameters<typeof DestinationPage>[0], 'destination' | 'syncs'>;

async function destinationPage(ctx: Context, id: string, extra: PageExtra = {}) {
  const [destination, syncs] = await Promise.all([readDestination(ctx, id), readSyncs(ctx)]);
  return <DestinationPage destination={destination} syncs={syncs.filter((s) => s.destination_id === id)} {...extra} />;
}

const NOTICES: Record<string, string> = {
  paused: 'Delivery paused: changes wait in the ledger until you resume.',
  resumed: 'Delivery resumed.',
  saved: 'Changes saved.',
};

export const destinationRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/destinations', async (req, reply) => {
    const [destinations, syncs] = await Promise.all([readDestinations(ctx), readSyncs(ctx)]);
    const deleted = queryOf(req).deleted;
    const notice = deleted ? `Destination "${deleted}" deleted.` : undefined;
    return html(reply, <DestinationsPage destinations={destinations} syncs={syncs} notice={notice} />);
  });

  ui.post('/destinations/:id/edit', async (req, reply) => {
    const id = parseId(req);
    const form = formOf(req);
    const values = Object.fromEntries(DESTINATION_EDIT_FIELDS.map((f) => [f, form[f]]));
    try {
      await updateDestination(ctx, id, destinationPatch(form));
      return reply.redirect(pathOf('destinations', id, '?done=saved'), 303);
    } catch (e) {
      const r = formErrors(e, DESTINATION_EDIT_FIELDS);
      return html(reply, await destinationPage(ctx, id, { values, errors: r.fields, error: r.message }), r.status);
    }
  });

  const deletePage = async (id: string, error?: string) => {
    const [destination, syncs] = await Promise.all([readDestination(ctx, id), readSyncs(ctx)]);
    return (
      <DeleteDestinationPage
        destination={destination}
        syncs={syncs.filter((s) => s.destination_id === id)}
        error={error}
      />
    );
  };

  ui.get('/destinations/:id/delete', async (req, reply) => html(reply, await deletePage(parseId(req))));

  ui.post('/destinations/:id/delete', async (req, reply) => {
    const id = parseId(req);
    const name = (await readDestination(ctx, id)).name;
    return confirmed(
      req,
      reply,
      (error) => deletePage(id, error),
      async () => {
        const r = await deleteDestination(ctx, id, { removeTags: formOf(req).remove_tags !== 'no' });
        return r.deleted ? `/destinations?deleted=${encodeURIComponent(name)}` : { refused: r.message };
      },
    );
  });

  ui.get('/destinations/:id', async (req, reply) => {
    const done = queryOf(req).done;
    return html(reply, await destinationPage(ctx, parseId(req), { notice: done ? NOTICES[done] : undefined }));
  });

  ui.post('/destinations/:id/test', async (req, reply) => {
    const r = await testDestination(ctx, parseId(req));
    return html(reply, <TestResult ok={r.ok} message={r.message} />);
  });

  ui.post('/destinations/:id/pause', async (req, reply) => {
    const id = parseId(req);
    await pauseDestination(ctx, id, optional(formOf(req).reason) ?? 'paused from the web UI');
    return reply.redirect(pathOf('destinations', id, '?done=paused'), 303);
  });

  ui.post('/destinations/:id/resume', async (req, reply) => {
    const id = parseId(req);
    await resumeDestination(ctx, id);
    return reply.redirect(pathOf('destinations', id, '?done=resumed'), 303);
  });

  ui.get('/destinations/new', async (_req, reply) =>
    html(reply, <NewDestinationPage values={{}} errors={{}} sources={await sourceChoices(ctx)} />),
  );

  ui.post('/destinations/test', async (req, reply) => {
    const r = await testDestinationSettings(destinationSettings(formOf(req))).catch((e: unknown) => {
      const err = toAmpError(e);
      if (err.kind === 'internal') throw err;
      return { ok: false, message: err.message };
    });
    return html(reply, <TestResult ok={r.ok} message={r.message} />);
  });

  ui.post('/destinations', async (req, reply) => {
    const form = formOf(req);
    const values: DestinationFormValues = {
      name: form.name,
      app_id: form.app_id,
      api_url: form.api_url,
      external_id_property: form.external_id_property,
      tag_key_template: form.tag_key_template,
      max_tags_per_user: form.max_tags_per_user,
      rate_limit_per_second: form.rate_limit_per_second,
      source_id: form.source_id,
    };
    try {
      const row = await addDestination(ctx, destinationSettings(form));
      return reply.redirect(`/cohorts?created=${encodeURIComponent(row.id)}`, 303);
    } catch (e) {
      const r = formErrors(e, [...DESTINATION_EDIT_FIELDS, 'app_id', 'source_id']);
      const page = (
        <NewDestinationPage
          sources={await sourceChoices(ctx)}
          values={values}
          errors={r.fields}
          formError={r.message}
        />
      );
      return html(reply, page, r.status);
    }
  });
};

/** Form strings → connector settings: empty optional fields fall back to the defaults. */
function destinationSettings(form: Form): Record<string, unknown> {
  const opt = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);
  const max = opt(form.max_tags_per_user);
  const rate = opt(form.rate_limit_per_second);
  return {
    name: form.name ?? '',
    app_id: form.app_id ?? '',
    api_key: form.api_key ?? '',
    api_url: opt(form.api_url),
    external_id_property: opt(form.external_id_property),
    tag_key_template: opt(form.tag_key_template),
    max_tags_per_user: max === undefined ? undefined : Number(max),
    rate_limit_per_second: rate === undefined ? undefined : Number(rate),
    source_id: opt(form.source_id),
  };
}

/** The edit form → a patch: an empty key keeps the current one; numbers are sent as typed for the operation to check. */
function destinationPatch(form: Form): Record<string, unknown> {
  const num = (v: string | undefined) => {
    const t = optional(v);
    return t === undefined ? undefined : /^-?\d+$/.test(t) ? Number(t) : t;
  };
  const patch: Record<string, unknown> = {
    name: form.name ?? '',
    api_key: optional(form.api_key),
    api_url: optional(form.api_url),
    rate_limit_per_second: num(form.rate_limit_per_second),
    max_tags_per_user: num(form.max_tags_per_user),
    tag_key_template: optional(form.tag_key_template),
    external_id_property: optional(form.external_id_property),
  };
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
}
