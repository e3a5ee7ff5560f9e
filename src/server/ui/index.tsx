import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { getConnector } from '../../connectors/catalog';
import { createDestination, destinationInputSchema } from '../../connectors/onesignal/destinations';
import { AmpError, isAmpError, toAmpError } from '../../errors';
import { log } from '../../telemetry/logger';
import { createSyncAction, decideRunAction, runSyncAction, testSettingsAction } from '../api/actions';
import {
  type AdminDeps,
  adminCookie,
  checkToken,
  clearAdminCookie,
  configuredToken,
  hasSession,
  sameOrigin,
  TOKEN_HELP,
} from '../api/auth';
import { describeIssues } from '../api/errors';
import {
  readCohorts,
  readDeadLetters,
  readDestination,
  readDestinations,
  readRun,
  readRunRecords,
  readRunsOfSync,
  readStream,
  readStreams,
  readSync,
  readSyncs,
} from '../api/queries';
import { idParam } from '../api/schemas';
import { retryAfterSeconds } from '../api/throttle';
import {
  CatalogPage,
  CohortsPage,
  DeadLettersPage,
  type DestinationFormValues,
  ErrorPage,
  LoginPage,
  NewDestinationPage,
  NoTokenPage,
  OverviewPage,
  RunPage,
  StreamsPage,
  SyncPage,
  TestResult,
} from './pages';
import { STYLESHEET } from './style';

/**
 * The server-rendered web UI (DESIGN §7). Security model:
 * - auth: the admin token, presented once (login form or `?token=`), then carried in an HttpOnly,
 *   SameSite=Strict cookie; compared in constant time. No token configured → 503, never open.
 * - CSRF: the SameSite=Strict cookie is not sent on cross-site requests, and every POST must also
 *   carry an Origin (or Referer) naming this host.
 * - XSS: every dynamic text is escaped (`safe`), and a CSP forbids inline scripts and styles.
 */

const require = createRequire(import.meta.url);
const HTML = 'text/html; charset=utf-8';
const PUBLIC_ROUTES = new Set(['/login']);

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

type Form = Record<string, string>;

const formOf = (req: FastifyRequest): Form => (req.body && typeof req.body === 'object' ? (req.body as Form) : {});

function html(reply: FastifyReply, page: JSX.Element, status = 200): FastifyReply {
  return reply
    .code(status)
    .type(HTML)
    .send(page as string);
}

/** Only same-site paths: `//evil.example` or `/\evil` would leave the site. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')
    ? next
    : '/';
}

const isHtmx = (req: FastifyRequest): boolean => req.headers['hx-request'] === 'true';

export async function registerUi(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const htmx = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));
  app.get('/assets/htmx.min.js', async (_req, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(htmx),
  );
  app.get('/assets/style.css', async (_req, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(STYLESHEET),
  );

  await app.register(async (ui) => {
    ui.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 64 * 1024 },
      (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      },
    );

    ui.addHook('onRequest', async (req, reply) => {
      reply
        .header('content-security-policy', CSP)
        .header('x-frame-options', 'DENY')
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'same-origin')
        .header('cache-control', 'no-store');

      const token = configuredToken(deps);
      if (!token) return html(reply, <NoTokenPage help={TOKEN_HELP} />, 503);

      if (req.method !== 'GET' && req.method !== 'HEAD' && !sameOrigin(req)) {
        return html(
          reply,
          <ErrorPage
            title="Request refused"
            message="This form was not sent from this site (Origin check failed). Reload the page and try again."
          />,
          403,
        );
      }

      // `?token=` once: trade it for the cookie, then drop it from the URL (and the history).
      const q = req.query as Record<string, unknown>;
      if (req.method === 'GET' && typeof q.token === 'string') {
        const url = new URL(req.url, 'http://ui.invalid');
        url.searchParams.delete('token');
        const check = checkToken(deps, req, q.token, token);
        if (!check.ok) return refuseSignIn(reply, safeNext(url.pathname + url.search), check.blockedMs);
        return reply.header('set-cookie', adminCookie(req, token)).redirect(url.pathname + url.search, 303);
      }

      if (PUBLIC_ROUTES.has(req.routeOptions.url ?? '')) return;
      if (hasSession(req, token)) return;
      if (isHtmx(req)) return reply.code(401).header('hx-redirect', '/login').send('');
      if (req.method === 'GET') return reply.redirect(`/login?next=${encodeURIComponent(req.url)}`, 303);
      return html(reply, <LoginPage next="/" error="Your session has ended; sign in again." />, 401);
    });

    ui.setErrorHandler((err, req, reply) => {
      const e = toAmpError(err);
      const status = isAmpError(err)
        ? e.httpStatus
        : typeof (err as { statusCode?: unknown }).statusCode === 'number'
          ? Number((err as { statusCode: number }).statusCode)
          : 500;
      if (status >= 500) log.error({ err, url: req.url }, 'UI request failed');
      const message =
        status >= 500 && e.kind === 'internal' ? 'Something went wrong on the server; see its log.' : e.message;
      const title = status === 404 ? 'Not found' : status >= 500 ? 'Server error' : 'Request refused';
      if (isHtmx(req))
        return reply
          .code(status)
          .type(HTML)
          .send(<TestResult ok={false} message={message} />);
      return html(reply, <ErrorPage title={title} message={message} />, status);
    });

    const { ctx } = deps;
    // --- sign in / out ---
    ui.get('/login', async (req, reply) => html(reply, <LoginPage next={safeNext((req.query as Form).next)} />));
    ui.post('/login', async (req, reply) => {
      const form = formOf(req);
      const token = configuredToken(deps)!;
      const next = safeNext(form.next);
      const check = checkToken(deps, req, form.token, token);
      if (!check.ok) return refuseSignIn(reply, next, check.blockedMs);
      return reply.header('set-cookie', adminCookie(req, token)).redirect(next, 303);
    });
    ui.post('/logout', async (_req, reply) => reply.header('set-cookie', clearAdminCookie()).redirect('/login', 303));

    // --- pages ---
    ui.get('/', async (_req, reply) => {
      const [destinations, syncs, streams] = await Promise.all([
        readDestinations(ctx),
        readSyncs(ctx),
        readStreams(ctx),
      ]);
      return html(reply, <OverviewPage destinations={destinations} syncs={syncs} streams={streams} />);
    });

    ui.get('/catalog', async (_req, reply) => html(reply, <CatalogPage oneSignal={getConnector('onesignal')} />));

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

    const cohortsPage = async (extra: Partial<Parameters<typeof CohortsPage>[0]> = {}) => {
      const [cohorts, destinations, syncs] = await Promise.all([
        readCohorts(ctx),
        readDestinations(ctx),
        readSyncs(ctx),
      ]);
      return <CohortsPage cohorts={cohorts} destinations={destinations} syncs={syncs} {...extra} />;
    };

    ui.get('/cohorts', async (req, reply) => {
      const created = (req.query as Form).created;
      let notice: string | undefined;
      if (typeof created === 'string' && idParam.safeParse({ id: created }).success) {
        const d = await readDestination(ctx, created).catch(() => undefined);
        if (d) notice = `Destination "${d.name}" saved. Pick a cohort below to sync to it.`;
      }
      return html(reply, await cohortsPage({ notice, selectedDestination: created }));
    });

    ui.post('/syncs', async (req, reply) => {
      const form = formOf(req);
      try {
        const sync = await createSyncAction(ctx, {
          cohort_id: form.cohort_id,
          destination_id: form.destination_id,
          cadence: form.cadence,
        });
        return reply.redirect(`/syncs/${encodeURIComponent(sync.id)}?created=1`, 303);
      } catch (e) {
        const err = toAmpError(e);
        if (err.kind === 'internal') throw err;
        const field = /cadence/i.test(err.message) ? 'cadence' : 'destination_id';
        const page = await cohortsPage({
          error: { cohortId: form.cohort_id ?? '', field, message: err.message },
          values: { cohort_id: form.cohort_id, destination_id: form.destination_id, cadence: form.cadence },
        });
        return html(reply, page, err.httpStatus);
      }
    });

    const syncPage = async (id: string, extra: { notice?: string; error?: string } = {}) => {
      const [sync, runs] = await Promise.all([readSync(ctx, id), readRunsOfSync(ctx, id, { limit: 50 })]);
      return <SyncPage sync={sync} runs={runs} {...extra} />;
    };

    ui.get('/syncs/:id', async (req, reply) => {
      const q = req.query as Form;
      const notice = q.created
        ? 'Sync created. Run it now, or let its cadence run it.'
        : q.queued
          ? 'Run queued; refresh to see it here.'
          : undefined;
      return html(reply, await syncPage(parseId(req), { notice }));
    });

    ui.post('/syncs/:id/run', async (req, reply) => {
      const id = parseId(req);
      const dryRun = formOf(req).dry_run === 'true';
      try {
        const r = await runSyncAction(deps, id, { dry_run: dryRun });
        if (r.body.run) return reply.redirect(`/runs/${encodeURIComponent(r.body.run.id)}`, 303);
        return reply.redirect(`/syncs/${encodeURIComponent(id)}?queued=1`, 303);
      } catch (e) {
        const err = toAmpError(e);
        if (err.kind === 'internal' || err.code === 'not_found') throw err;
        return html(reply, await syncPage(id, { error: err.message }), err.httpStatus);
      }
    });

    const runPage = async (id: string, extra: { notice?: string; error?: string } = {}) => {
      const run = await readRun(ctx, id);
      const [sync, records] = await Promise.all([
        readSync(ctx, run.sync_id).catch(() => null),
        readRunRecords(ctx, id, { limit: 500 }),
      ]);
      return <RunPage run={run} sync={sync} records={records} {...extra} />;
    };

    ui.get('/runs/:id', async (req, reply) => {
      const decided = (req.query as Form).decided;
      const notice =
        decided === 'approve'
          ? 'Run approved.'
          : decided === 'reject'
            ? 'Run rejected; nothing was changed.'
            : undefined;
      return html(reply, await runPage(parseId(req), { notice }));
    });

    for (const decision of ['approve', 'reject'] as const) {
      ui.post(`/runs/:id/${decision}`, async (req, reply) => {
        const id = parseId(req);
        try {
          await decideRunAction(deps, id, decision);
          return reply.redirect(`/runs/${encodeURIComponent(id)}?decided=${decision}`, 303);
        } catch (e) {
          const err = toAmpError(e);
          if (err.kind === 'internal' || err.code === 'not_found') throw err;
          return html(reply, await runPage(id, { error: err.message }), err.httpStatus);
        }
      });
    }

    ui.get('/streams', async (_req, reply) => html(reply, <StreamsPage streams={await readStreams(ctx)} />));

    ui.get('/streams/:id/dead-letters', async (req, reply) => {
      const id = parseId(req);
      const stream = await readStream(ctx, id);
      const letters = await readDeadLetters(ctx, { streamId: id, limit: 500 });
      return html(reply, <DeadLettersPage stream={stream} letters={letters} />);
    });
  });
}

/** A wrong token: 401 and the form again; a client over the throttle: 429 with Retry-After. */
function refuseSignIn(reply: FastifyReply, next: string, blockedMs: number): FastifyReply {
  if (blockedMs <= 0) return html(reply, <LoginPage next={next} error="That token is not the admin token." />, 401);
  const seconds = retryAfterSeconds(blockedMs);
  void reply.header('retry-after', String(seconds));
  return html(
    reply,
    <LoginPage next={next} error={`Too many wrong tokens from this address; try again in ${seconds} s.`} />,
    429,
  );
}

function parseId(req: FastifyRequest): string {
  const r = idParam.safeParse(req.params);
  if (!r.success) throw new AmpError('invalid_input', `invalid id in the address: ${describeIssues(r.error)}`);
  return r.data.id;
}

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

function fieldErrors(error: z.ZodError): Record<string, string> {
  const out: Record<string, string> = {};
  for (const i of error.issues) {
    const k = String(i.path[0] ?? '_');
    out[k] ??= i.message;
  }
  return out;
}
