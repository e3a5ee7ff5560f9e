import { createDestination, destinationInputSchema } from '../../../connectors/onesignal/destinations';
import { toAmpError } from '../../../errors';
import { testSettingsAction } from '../../api/actions';
import { type Form, fieldErrors, formOf, html, type UiRoutes } from '../http';
import { type DestinationFormValues, NewDestinationPage, TestResult } from '../pages/destinations';

export const destinationRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/destinations/new', async (_req, reply) => html(reply, <NewDestinationPage values={{}} errors={{}} />));

  ui.post('/destinations/test', async (req, reply) => {
    const r = await testSettingsAction(destinationSettings(formOf(req))).catch((e: unknown) => {
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
    };
    const input = destinationSettings(form);
    const parsed = destinationInputSchema.safeParse(input);
    if (!parsed.success) {
      return html(reply, <NewDestinationPage values={values} errors={fieldErrors(parsed.error)} />, 400);
    }
    try {
      const row = await createDestination(ctx, input);
      return reply.redirect(`/cohorts?created=${encodeURIComponent(row.id)}`, 303);
    } catch (e) {
      const err = toAmpError(e);
      if (err.kind === 'internal') throw err;
      const errors: Record<string, string> =
        err.code === 'conflict' ? { name: err.message.replace(/; pick another --name$/, '; pick another name') } : {};
      return html(
        reply,
        <NewDestinationPage
          values={values}
          errors={errors}
          formError={err.code === 'conflict' ? undefined : err.message}
        />,
        err.httpStatus,
      );
    }
  });
};

/** Form strings → connector settings: empty optional fields fall back to the defaults. */
function destinationSettings(form: Form): Record<string, unknown> {
  const opt = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);
  const max = opt(form.max_tags_per_user);
  return {
    name: form.name ?? '',
    app_id: form.app_id ?? '',
    api_key: form.api_key ?? '',
    api_url: opt(form.api_url),
    external_id_property: opt(form.external_id_property),
    tag_key_template: opt(form.tag_key_template),
    max_tags_per_user: max === undefined ? undefined : Number(max),
  };
}
