import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { AmpError } from '../../errors';
import type { JobQueue } from '../../jobs/port';
import type { Context } from '../../store';
import { secretsEqual } from '../../store/secrets';
import { FailureThrottle } from './throttle';

/** What the admin API, the UI and /metrics need from the server (a subset of ServerDeps). */
export interface AdminDeps {
  ctx: Context;
  jobs?: JobQueue;
  /** Overrides AMPSIGNAL_ADMIN_TOKEN. Without either, the API and UI refuse to serve (503). */
  adminToken?: string;
  /** Wrong tokens per client address, shared by the API and the UI of one server. */
  tokenThrottle?: FailureThrottle;
}

export const ADMIN_COOKIE = 'ampsignal_admin';

export const TOKEN_HELP =
  'No admin token is configured, so the admin API and web UI are disabled. ' +
  'Set AMPSIGNAL_ADMIN_TOKEN to a long random value (e.g. `openssl rand -hex 32`) and restart `ampsignal serve`.';

// Long enough that guessing, at the throttle's 10 tries a minute, never ends; `openssl rand -hex
// 32` gives 64 characters.
export const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The one rule for an admin token, as the line `serve` refuses to start with; undefined if fine. */
export function adminTokenProblem(token: string | undefined): string | undefined {
  if (token === undefined || token.trim().length === 0) return undefined;
  const n = token.trim().length;
  if (n < MIN_ADMIN_TOKEN_LENGTH)
    return `AMPSIGNAL_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters (it has ${n}); use a long random value, e.g. \`openssl rand -hex 32\``;
  return undefined;
}

/** Throws (invalid_input, one line) when the token given or in the environment breaks the rule. */
export function assertAdminToken(deps: Pick<AdminDeps, 'adminToken'>): void {
  const problem = adminTokenProblem(deps.adminToken ?? process.env.AMPSIGNAL_ADMIN_TOKEN);
  if (problem) throw new AmpError('invalid_input', problem);
}

/** The configured token; a too-short one never opens the admin surface (the server refuses to start with it). */
export function configuredToken(deps: AdminDeps): string | undefined {
  const t = deps.adminToken ?? process.env.AMPSIGNAL_ADMIN_TOKEN;
  return t && t.trim().length > 0 && !adminTokenProblem(t) ? t : undefined;
}

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m?.[1]?.trim();
}

export function parseCookies(header: string | undefined): Record<string, string> {
  // No prototype: a cookie named __proto__ or constructor is just a cookie.
  const out: Record<string, string> = Object.create(null);
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

export function tokenMatches(presented: string | undefined, expected: string): boolean {
  return presented !== undefined && secretsEqual(presented, expected);
}

export type TokenCheck = { ok: true } | { ok: false; blockedMs: number };

/**
 * A presented admin token (bearer header, sign-in form, `?token=`), throttled per client address:
 * a blocked client is refused before any comparison (`blockedMs` > 0: answer 429); a wrong token
 * is counted (`blockedMs` 0: answer 401).
 */
export function checkToken(
  deps: AdminDeps,
  req: FastifyRequest,
  presented: string | undefined,
  token: string,
): TokenCheck {
  deps.tokenThrottle ??= new FailureThrottle();
  const throttle = deps.tokenThrottle;
  const blockedMs = throttle.blockedFor(req.ip);
  if (blockedMs > 0) return { ok: false, blockedMs };
  if (tokenMatches(presented, token)) {
    throttle.succeed(req.ip);
    return { ok: true };
  }
  throttle.fail(req.ip);
  return { ok: false, blockedMs: 0 };
}

// A UI session is `<random id>.<expiry, unix s>.<HMAC of both>`, keyed by the admin token: the
// cookie never holds the token, no server keeps session state (any process with the token checks
// it), and changing the token ends every session.
const SESSION_SECONDS = 12 * 3600;

function sessionMac(token: string, idAndExpiry: string): Buffer {
  const key = createHmac('sha256', token).update('ampsignal ui session').digest();
  return createHmac('sha256', key).update(idAndExpiry).digest();
}

export function newSession(token: string, now = Date.now()): string {
  const idAndExpiry = `${randomBytes(24).toString('base64url')}.${Math.floor(now / 1000) + SESSION_SECONDS}`;
  return `${idAndExpiry}.${sessionMac(token, idAndExpiry).toString('base64url')}`;
}

export function validSession(value: string | undefined, token: string, now = Date.now()): boolean {
  const m = value === undefined ? null : /^([A-Za-z0-9_-]{32})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!m) return false;
  if (Number(m[2]) * 1000 <= now) return false;
  const expected = sessionMac(token, `${m[1]}.${m[2]}`);
  const given = Buffer.from(m[3]!, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function hasSession(req: FastifyRequest, token: string): boolean {
  return validSession(parseCookies(req.headers.cookie)[ADMIN_COOKIE], token);
}

/**
 * The admin cookie: a new session (never the token), HttpOnly (no script reads it),
 * SameSite=Strict (never sent on a cross-site request, the first half of our CSRF defence),
 * Secure when the request came over TLS: directly, or through a proxy we trust
 * (AMPSIGNAL_TRUST_PROXY) that says so in X-Forwarded-Proto.
 */
export function adminCookie(req: FastifyRequest, token: string): string {
  const parts = [
    `${ADMIN_COOKIE}=${newSession(token)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${SESSION_SECONDS}`,
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
