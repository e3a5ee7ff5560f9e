import type { FastifyRequest } from 'fastify';
import type { JobQueue } from '../../jobs/port';
import type { Context } from '../../store';
import { secretsEqual } from '../../store/secrets';

/** What the admin API, the UI and /metrics need from the server (a subset of ServerDeps). */
export interface AdminDeps {
  ctx: Context;
  jobs?: JobQueue;
  /** Overrides AMPSIGNAL_ADMIN_TOKEN. Without either, the API and UI refuse to serve (503). */
  adminToken?: string;
}

export const ADMIN_COOKIE = 'ampsignal_admin';

export const TOKEN_HELP =
  'No admin token is configured, so the admin API and web UI are disabled. ' +
  'Set AMPSIGNAL_ADMIN_TOKEN to a long random value (e.g. `openssl rand -hex 32`) and restart `ampsignal serve`.';

/** The configured token; too-short values are refused so a typo never opens the admin surface. */
export function configuredToken(deps: AdminDeps): string | undefined {
  const t = deps.adminToken ?? process.env.AMPSIGNAL_ADMIN_TOKEN;
  return t && t.trim().length > 0 ? t : undefined;
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1]?.trim();
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    try {
      out[k] = decodeURIComponent(v);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

export function cookieToken(req: FastifyRequest): string | undefined {
  return parseCookies(req.headers.cookie)[ADMIN_COOKIE];
}

export function tokenMatches(presented: string | undefined, expected: string): boolean {
  return presented !== undefined && secretsEqual(presented, expected);
}

/**
 * The admin cookie: HttpOnly (no script reads it), SameSite=Strict (never sent on a cross-site
 * request, which is the first half of our CSRF defence), Secure when served over HTTPS.
 */
export function adminCookie(req: FastifyRequest, token: string, maxAgeSeconds = 12 * 3600): string {
  const parts = [
    `${ADMIN_COOKIE}=${encodeURIComponent(token)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${maxAgeSeconds}`,
  ];
  if (req.protocol === 'https') parts.push('Secure');
  return parts.join('; ');
}

export function clearAdminCookie(): string {
  return `${ADMIN_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
}

/**
 * The second half of the CSRF defence for state-changing UI requests: the browser's Origin
 * header (or, if a privacy setting strips it, the Referer) must name this very host. A request
 * with neither is refused, since every browser we support sends Origin on POST.
 */
export function sameOrigin(req: FastifyRequest): boolean {
  const host = req.headers.host;
  if (!host) return false;
  const origin = req.headers.origin ?? req.headers.referer;
  if (typeof origin !== 'string' || origin === 'null') return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
