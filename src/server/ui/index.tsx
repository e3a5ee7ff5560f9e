import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isAmpError, toAmpError } from '../../errors';
import { log } from '../../telemetry/logger';
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
import { retryAfterSeconds } from '../api/throttle';
import { type Form, formOf, HTML, html, isHtmx, type UiRoutes } from './http';
import { TestResult } from './pages/destinations';
import { ErrorPage } from './pages/error';
import { LoginPage, NoTokenPage } from './pages/sign-in';
import { alertRoutes } from './routes/alerts';
import { cohortRoutes } from './routes/cohorts';
import { configurationRoutes } from './routes/configuration';
import { destinationRoutes } from './routes/destinations';
import { overviewRoutes } from './routes/overview';
import { runRoutes } from './routes/runs';
import { sourceRoutes } from './routes/sources';
import { streamRoutes } from './routes/streams';
import { syncRoutes } from './routes/syncs';
import { userRoutes } from './routes/users';
import { verifyRoutes } from './routes/verify';
import { UI_SCRIPT } from './script';
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
const PUBLIC_ROUTES = new Set(['/login']);

/** One file per object under routes/; each registers its own pages and actions. */
const UI_ROUTES: UiRoutes[] = [
  overviewRoutes,
  sourceRoutes,
  destinationRoutes,
  cohortRoutes,
  syncRoutes,
  runRoutes,
  streamRoutes,
  alertRoutes,
  verifyRoutes,
  userRoutes,
  configurationRoutes,
];

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Only same-site paths: `//evil.example` or `/\evil` would leave the site. */
function safeNext(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')
    ? next
    : '/';
}

export async function registerUi(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const htmx = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));
  app.get('/assets/htmx.min.js', async (_req, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(htmx),
  );
  app.get('/assets/ui.js', async (_req, reply) =>
    reply.type('application/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(UI_SCRIPT),
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

    for (const routes of UI_ROUTES) routes(ui, deps);
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
