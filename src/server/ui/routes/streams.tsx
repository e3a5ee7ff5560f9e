import type { FastifyRequest } from 'fastify';
import { replayDeadLetters } from '../../../events/dead-letters';
import { forwardStream } from '../../../events/forward';
import { EVENT_STREAM_BODY_TEMPLATE } from '../../../events/stream-template';
import {
  createStream,
  getStream,
  parseEventNames,
  pauseStream,
  resumeStream,
  streamActivity,
  streamInputSchema,
} from '../../../events/streams';
import type { Context } from '../../../store';
import { readDeadLetters, readStream, readStreams } from '../../api/queries';
import {
  fieldErrors,
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
import { ActivityChart, NewStreamPage, type StreamFormValues, StreamPage, StreamsPage } from '../pages/streams';

const NOTICES: Record<string, string> = {
  paused: 'Forwarding paused: events are still received and wait in the outbox.',
  resumed: 'Forwarding resumed.',
};

async function streamPage(
  ctx: Context,
  req: FastifyRequest,
  id: string,
  extra: { secret?: string; notice?: string | undefined; error?: string } = {},
): Promise<JSX.Element> {
  const [stream, row, activity] = await Promise.all([readStream(ctx, id), getStream(ctx, id), streamActivity(ctx, id)]);
  return (
    <StreamPage
      stream={stream}
      webhookUrl={`${publicBase(req)}${stream.webhook_path}`}
      bodyTemplate={EVENT_STREAM_BODY_TEMPLATE}
      eventNames={parseEventNames(row) ?? {}}
      chart={<ActivityChart activity={activity} />}
      {...extra}
    />
  );
}

export const streamRoutes: UiRoutes = (ui, { ctx }) => {
  ui.get('/streams', async (_req, reply) => html(reply, <StreamsPage streams={await readStreams(ctx)} />));

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
    const parsed = streamInputSchema.safeParse({
      name: form.name ?? '',
      amplitudeApiKey: form.amplitude_api_key ?? '',
      region: form.region ?? 'us',
      amplitudeUrl: optional(form.amplitude_url),
      eventNames: names,
    });
    if (!parsed.success) {
      const errors = fieldErrors(parsed.error);
      const byField = {
        name: errors.name,
        amplitude_api_key: errors.amplitudeApiKey,
        region: errors.region,
        amplitude_url: errors.amplitudeUrl,
        event_names: errors.eventNames,
      } as Record<string, string>;
      return html(reply, <NewStreamPage values={values} errors={byField} />, 400);
    }
    try {
      const { row, webhookSecret } = await createStream(ctx, parsed.data);
      // Answered here, not redirected: the secret is shown once, in this answer only.
      const notice = 'Stream saved. Set up the Event Stream in OneSignal with the values below.';
      return html(reply, await streamPage(ctx, req, row.id, { secret: webhookSecret, notice }), 201);
    } catch (e) {
      const err = userFacing(e);
      const conflict = err.code === 'conflict';
      return html(
        reply,
        <NewStreamPage
          values={values}
          errors={conflict ? { name: err.message } : {}}
          formError={conflict ? undefined : err.message}
        />,
        err.httpStatus,
      );
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
    await resumeStream(ctx, id);
    return reply.redirect(pathOf('streams', id, '?done=resumed'), 303);
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
    const stream = await readStream(ctx, id);
    const letters = await readDeadLetters(ctx, { streamId: id, limit: 500 });
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
    const r = await replayDeadLetters(ctx, { stream: id, ...(one ? { ids: [one] } : {}) });
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
