import type { FastifyRequest } from 'fastify';
import { exportConfig } from '../../../app/config';
import { applyConfigText, type ConfigRequest, planConfigText } from '../../../app/config-server';
import { toAmpError } from '../../../errors';
import { formOf, html, type UiRoutes } from '../http';
import { ConfigurationPage, ConfirmApplyPage } from '../pages/configuration';

/** The file as the form sent it: a textarea's or a carried hidden field's YAML, and the prune box. */
function fileOf(req: FastifyRequest): ConfigRequest {
  const form = formOf(req);
  return { yaml: form.yaml ?? '', prune: form.prune === 'true' };
}

/** Any refusal of the file (a bad line, a conflict, a cohort not found) is shown on the page; a fault is not. */
function refusal(e: unknown) {
  const err = toAmpError(e);
  if (err.kind === 'internal') throw e;
  return err;
}

/** Configuration as code in the UI: the export, and plan / confirm / apply of a pasted file. */
export const configurationRoutes: UiRoutes = (ui, { ctx }) => {
  const page = async (p: Omit<Parameters<typeof ConfigurationPage>[0], 'exported'>) => (
    <ConfigurationPage exported={await exportConfig(ctx)} {...p} />
  );

  ui.get('/configuration', async (_req, reply) => html(reply, await page({})));

  ui.get('/configuration/ampsignal.yaml', async (_req, reply) =>
    reply
      .type('application/yaml; charset=utf-8')
      .header('content-disposition', 'attachment; filename="ampsignal.yaml"')
      .send(await exportConfig(ctx)),
  );

  ui.post('/configuration/plan', async (req, reply) => {
    const file = fileOf(req);
    try {
      return html(reply, await page({ ...file, plan: await planConfigText(ctx, file) }));
    } catch (e) {
      const err = refusal(e);
      return html(reply, await page({ ...file, error: err.message }), err.httpStatus);
    }
  });

  ui.post('/configuration/apply', async (req, reply) => {
    const file = fileOf(req);
    try {
      // Only the confirmation page's own button applies; the plan's button asks first.
      if (formOf(req).confirm !== 'yes')
        return html(reply, <ConfirmApplyPage plan={await planConfigText(ctx, file)} {...file} />);
      return html(reply, await page({ ...file, result: await applyConfigText(ctx, file) }));
    } catch (e) {
      const err = refusal(e);
      return html(reply, await page({ ...file, error: err.message }), err.httpStatus);
    }
  });
};
