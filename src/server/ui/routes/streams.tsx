import type { FastifyRequest } from 'fastify';
import { listDeadLetters, replay } from '../../../app/dead-letters';
import {
  addStream,
  deleteStream,
  listStreams,
  pauseStream,
  resumeStream,
  showStream,
  updateStream,
} from '../../../app/streams';
import { forwardStream } from '../../../events/forward';
import { EVENT_STREAM_BODY_TEMPLATE } from '../../../events/stream-template';
import { streamActivity } from '../../../events/streams';
import type { Context } from '../../../store';
import {
  confirmed,
  type Form,
  formErrors,
  formOf,
  html,
  optional,
  parseId,
  pathOf,
  publicBase,
  queryOf,
  type UiRoutes,
  userFacing,
} from '../http';
import { DeadLettersPage } from '../pages/dead-letters';
import {
  ActivityChart,
  DeleteStreamPage,
  NewStreamPage,
  STREAM_FORM_FIELDS,
  type StreamFormValues,
  StreamPage,
  StreamsPage,
} from '../pages/streams';

const NOTICES: Record<string, string> = {
  paused: 'Forwarding paused: events are still received and wait in the outbox.',
  resumed: 'Forwarding resumed: Amplitude accepted the key.',
  saved: 'Changes saved.',
};

async function streamPage(
  ctx: Context,
  req: FastifyRequest,
  id: string,
  extra: Omit<Parameters<typeof StreamPage>[0], 'stream' | 'webhookUrl' | 'bodyTemplate' | 'eventNames'> = {},
): Promise<JSX.Element> {
  const [stream, activity] = await Promise.all([showStream(ctx, id), streamActivity(ctx, id)]);
  return (
    <StreamPage
      stream={stream}
      webhookUrl={`${publicBase(req)}${stream.webhook_path}`}
      bodyTemplate={EVENT_STREAM_BODY_TEMPLATE}
      eventNames={stream.event_names}
      chart={<ActivityChart activity={activity} />}
      {...extra}
    />
  );
}

export const streamRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/streams', async (req, reply) => {
    const deleted = queryOf(req).deleted;
    const notice = deleted ? `Stream "${deleted}" deleted; remove its Event Stream in OneSignal too.` : undefined;
    return html(reply, <StreamsPage streams={await listStreams(ctx)} notice={notice} />);
  });

  ui.get('/streams/new', async (_req, reply) => html(reply, <NewStreamPage values={{}} errors={{}} />));

  ui.post('/streams', async (req, reply) => {
    const form = formOf(req);
    const values: StreamFormValues = {
      name: form.name,
      region: form.region,
      amplitude_url: form.amplitude_url,
      event_names: form.event_names,
    };
    const names = eventNameLines(form.event_names);
    if (typeof names === 'string')
      return html(reply, <NewStreamPage values={values} errors={{ event_names: names }} />, 400);
    try {
      const created = await addStream(ctx, {
        name: form.name ?? '',
        amplitude_api_key: form.amplitude_api_key ?? '',
        region: form.region ?? 'us',
        amplitude_url: optional(form.amplitude_url),
        event_names: names,
      });
      // Answered here, not redirected: the secret is shown once, in this answer only.
      const notice = 'Stream saved. Set up the Event Stream in OneSignal with the values below.';
      return html(reply, await streamPage(ctx, req, created.id, { secret: created.webhook_secret, notice }), 201);
    } catch (e) {
      const r = formErrors(e, STREAM_FORM_FIELDS);
      return html(reply, <NewStreamPage values={values} errors={r.fields} formError={r.message} />, r.status);
    }
  });

  ui.get('/streams/:id', async (req, reply) => {
    const q = queryOf(req);
    const notice = q.done
      ? NOTICES[q.done]
      : q.forwarded
        ? `Forwarded ${q.forwarded}; dead-lettered ${q.dead ?? 0}; ${q.pending ?? 0} still pending.`
        : undefined;
    return html(reply, await streamPage(ctx, req, parseId(req), { notice }));
  });

  ui.post('/streams/:id/pause', async (req, reply) => {
    const id = parseId(req);
    await pauseStream(ctx, id, optional(formOf(req).reason) ?? 'paused from the web UI');
    return reply.redirect(pathOf('streams', id, '?done=paused'), 303);
  });

  ui.post('/streams/:id/resume', async (req, reply) => {
    const id = parseId(req);
    try {
      await resumeStream(ctx, id);
      return reply.redirect(pathOf('streams', id, '?done=resumed'), 303);
    } catch (e) {
      const r = formErrors(e, []);
      return html(reply, await streamPage(ctx, req, id, { error: r.message }), r.status);
    }
  });

  ui.post('/streams/:id/edit', async (req, reply) => {
    const id = parseId(req);
    const form = formOf(req);
    const values: StreamFormValues = {
      name: form.name,
      region: form.region,
      amplitude_url: form.amplitude_url,
      event_names: form.event_names,
    };
    const names = eventNameLines(form.event_names);
    if (typeof names === 'string')
      return html(reply, await streamPage(ctx, req, id, { values, errors: { event_names: names } }), 400);
    try {
      await updateStream(ctx, id, streamPatch(form, names));
      return reply.redirect(pathOf('streams', id, '?done=saved'), 303);
    } catch (e) {
      const r = formErrors(e, STREAM_FORM_FIELDS);
      return html(reply, await streamPage(ctx, req, id, { values, errors: r.fields, error: r.message }), r.status);
    }
  });

  const deletePage = async (id: string, error?: string) => (
    <DeleteStreamPage stream={await showStream(ctx, id)} error={error} />
  );

  ui.get('/streams/:id/delete', async (req, reply) => html(reply, await deletePage(parseId(req))));

  ui.post('/streams/:id/delete', async (req, reply) => {
    const id = parseId(req);
    const name = (await showStream(ctx, id)).name;
    return confirmed(
      req,
      reply,
      (error) => deletePage(id, error),
      async () => {
        await deleteStream(ctx, id);
        return `/streams?deleted=${encodeURIComponent(name)}`;
      },
    );
  });

  ui.post('/streams/:id/forward', async (req, reply) => {
    const id = parseId(req);
    try {
      const r = await forwardStream(ctx, id);
      return reply.redirect(
        pathOf('streams', id, `?forwarded=${r.forwarded}&dead=${r.deadLettered}&pending=${r.pending}`),
        303,
      );
    } catch (e) {
      const err = userFacing(e);
      return html(reply, await streamPage(ctx, req, id, { error: err.message }), err.httpStatus);
    }
  });

  const deadLettersPage = async (id: string, notice?: string) => {
    const stream = await showStream(ctx, id);
    const letters = await listDeadLetters(ctx, { stream: id, limit: 500 });
    return <DeadLettersPage stream={stream} letters={letters} notice={notice} />;
  };

  ui.get('/streams/:id/dead-letters', async (req, reply) => {
    const replayed = queryOf(req).replayed;
    const notice =
      replayed === undefined
        ? undefined
        : `${replayed} dead letter(s) back in the outbox: they are forwarded again (with their original insert_id, so Amplitude ingests each once).`;
    return html(reply, await deadLettersPage(parseId(req), notice));
  });

  ui.post('/streams/:id/dead-letters/replay', async (req, reply) => {
    const id = parseId(req);
    const one = optional(formOf(req).id);
    const r = await replay(ctx, { stream: id, ...(one ? { ids: [one] } : { all: true }) });
    return reply.redirect(pathOf('streams', id, `/dead-letters?replayed=${r.replayed}`), 303);
  });
};

/** The textarea's `KIND=NAME` lines → overrides, or the message naming the line to fix. */
function eventNameLines(text: string | undefined): Record<string, string> | undefined | string {
  const lines = (text ?? '')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf('=');
    if (i <= 0 || i === line.length - 1) return `"${line}": write KIND=NAME, e.g. message.push.clicked=Push Opened`;
    out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/** The settings form → a patch: an empty key keeps the current one, an empty URL means the region's. */
function streamPatch(form: Form, names: Record<string, string> | undefined): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries({
      name: form.name ?? '',
      amplitude_api_key: optional(form.amplitude_api_key),
      region: optional(form.region),
      amplitude_url: optional(form.amplitude_url) ?? null,
      event_names: names ?? {},
    }).filter(([, v]) => v !== undefined),
  );
}
