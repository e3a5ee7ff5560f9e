import type { FastifyRequest } from 'fastify';
import { addSource, deleteSource, listSources, showSource, testSource, updateSource } from '../../../app/sources';
import { downloadsThisMonth, plannedMonthlyDownloads } from '../../../connectors/amplitude/budget';
import { refreshSourceCohorts } from '../../../connectors/amplitude/cohorts';
import { COHORTS_API_URL } from '../../../connectors/amplitude/constants';
import { getSource, revealWebhookSecret, type SourceRow, sourceView } from '../../../connectors/amplitude/sources';
import type { Context } from '../../../store';
import { readCohorts } from '../../api/queries';
import {
  confirmed,
  type Form,
  formErrors,
  formOf,
  html,
  optional,
  parseId,
  publicBase,
  queryOf,
  type UiRoutes,
  userFacing,
} from '../http';
import { TestResult } from '../pages/destinations';
import {
  DeleteSourcePage,
  NewSourcePage,
  SOURCE_EDIT_FIELDS,
  type SourceFormValues,
  SourcePage,
  type SourceRead,
  SourcesPage,
  WebhookSecret,
} from '../pages/sources';

async function sourceRead(ctx: Context, row: SourceRow): Promise<SourceRead> {
  const [used, planned] = await Promise.all([downloadsThisMonth(ctx, row.id), plannedMonthlyDownloads(ctx, row.id)]);
  return { ...sourceView(row), downloads_this_month: used, planned_downloads_per_month: planned.total };
}

/** The form shows the URL override only: empty means "the region's address". */
function editValues(row: SourceRow): SourceFormValues {
  const regional = COHORTS_API_URL[row.region as keyof typeof COHORTS_API_URL];
  return {
    name: row.name,
    region: row.region,
    download_budget: String(row.download_budget),
    api_url: row.api_url && row.api_url !== regional ? row.api_url : '',
  };
}

const NOTICES: Record<string, string> = {
  created:
    'Source saved. Paste the webhook URL and header into Amplitude for real-time cohorts, or refresh its cohorts below.',
  saved: 'Changes saved.',
};

export const sourceRoutes: UiRoutes = (ui, { ctx }) => {
  const sourcePage = async (req: FastifyRequest, id: string, extra: Partial<Parameters<typeof SourcePage>[0]> = {}) => {
    const row = await getSource(ctx, id);
    const [source, cohorts] = await Promise.all([sourceRead(ctx, row), readCohorts(ctx)]);
    return (
      <SourcePage
        source={source}
        cohorts={cohorts.filter((c) => c.source_id === id)}
        webhookUrl={`${publicBase(req)}${source.webhook_path}`}
        values={editValues(row)}
        {...extra}
      />
    );
  };

  ui.get('/sources', async (req, reply) => {
    const deleted = queryOf(req).deleted;
    const notice = deleted ? `Source "${deleted}" deleted with its cohorts.` : undefined;
    return html(reply, <SourcesPage sources={await listSources(ctx)} notice={notice} />);
  });

  ui.get('/sources/new', async (_req, reply) => html(reply, <NewSourcePage values={{}} errors={{}} />));

  ui.post('/sources', async (req, reply) => {
    const form = formOf(req);
    const values: SourceFormValues = {
      name: form.name,
      region: form.region,
      api_url: form.api_url,
      download_budget: form.download_budget,
    };
    try {
      const created = await addSource(ctx, sourceSettings(form));
      // The secret is on the page right after creation, as `source add` prints it.
      return reply.redirect(`/sources/${encodeURIComponent(created.id)}?created=1`, 303);
    } catch (e) {
      const r = formErrors(e, SOURCE_EDIT_FIELDS);
      return html(reply, <NewSourcePage values={values} errors={r.fields} formError={r.message} />, r.status);
    }
  });

  ui.get('/sources/:id', async (req, reply) => {
    const id = parseId(req);
    const q = queryOf(req);
    const created = q.created === '1';
    const secret = created ? revealWebhookSecret(ctx, await getSource(ctx, id)) : undefined;
    const notice = created
      ? NOTICES.created
      : q.saved
        ? NOTICES.saved
        : q.refreshed
          ? `${q.refreshed} cohort(s) listed from Amplitude.`
          : undefined;
    return html(reply, await sourcePage(req, id, { secret, notice }));
  });

  ui.post('/sources/:id/secret', async (req, reply) => {
    const id = parseId(req);
    return html(reply, <WebhookSecret sourceId={id} secret={revealWebhookSecret(ctx, await getSource(ctx, id))} />);
  });

  ui.post('/sources/:id/refresh', async (req, reply) => {
    const id = parseId(req);
    try {
      const cohorts = await refreshSourceCohorts(ctx, id);
      if (formOf(req).back === '/cohorts') {
        const q = new URLSearchParams({ refreshed: String(cohorts.length), source: (await getSource(ctx, id)).name });
        return reply.redirect(`/cohorts?${q}`, 303);
      }
      return reply.redirect(`/sources/${encodeURIComponent(id)}?refreshed=${cohorts.length}`, 303);
    } catch (e) {
      const err = userFacing(e);
      return html(reply, await sourcePage(req, id, { error: `Refresh failed: ${err.message}` }), err.httpStatus);
    }
  });

  ui.post('/sources/:id/edit', async (req, reply) => {
    const id = parseId(req);
    const form = formOf(req);
    const values: SourceFormValues = {
      name: form.name,
      region: form.region,
      download_budget: form.download_budget,
      api_url: form.api_url,
    };
    // Empty key fields keep the current keys; an empty URL means "the region's address".
    const patch = Object.fromEntries(
      Object.entries({
        name: form.name ?? '',
        region: optional(form.region),
        api_key: optional(form.api_key),
        secret_key: optional(form.secret_key),
        download_budget: optional(form.download_budget),
        api_url: optional(form.api_url) ?? null,
      }).filter(([, v]) => v !== undefined),
    );
    try {
      await updateSource(ctx, id, patch);
      return reply.redirect(`/sources/${encodeURIComponent(id)}?saved=1`, 303);
    } catch (e) {
      const r = formErrors(e, SOURCE_EDIT_FIELDS);
      return html(reply, await sourcePage(req, id, { values, errors: r.fields, error: r.message }), r.status);
    }
  });

  ui.post('/sources/:id/test', async (req, reply) => {
    const r = await testSource(ctx, parseId(req));
    return html(reply, <TestResult ok={r.ok} message={r.message} />);
  });

  const deletePage = async (id: string, error?: string) => {
    const [source, cohorts] = await Promise.all([showSource(ctx, id), readCohorts(ctx)]);
    return <DeleteSourcePage source={source} cohorts={cohorts.filter((c) => c.source_id === id)} error={error} />;
  };

  ui.get('/sources/:id/delete', async (req, reply) => html(reply, await deletePage(parseId(req))));

  ui.post('/sources/:id/delete', async (req, reply) => {
    const id = parseId(req);
    const name = (await getSource(ctx, id)).name;
    return confirmed(
      req,
      reply,
      (error) => deletePage(id, error),
      async () => {
        const r = await deleteSource(ctx, id, { force: formOf(req).force === 'yes' });
        return r.deleted ? `/sources?deleted=${encodeURIComponent(name)}` : { refused: r.message };
      },
    );
  });
};

/** Form strings → source settings: empty optional fields fall back to the defaults. */
function sourceSettings(form: Form) {
  return {
    name: form.name ?? '',
    api_key: form.api_key ?? '',
    secret_key: form.secret_key ?? '',
    region: form.region ?? 'us',
    api_url: optional(form.api_url),
    download_budget: optional(form.download_budget),
  };
}
