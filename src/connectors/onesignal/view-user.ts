import { AmpError, type Backoff, withRetries } from '../../errors';
import { httpRequest } from '../http';
import { classifyResponse } from './classify';
import { AUTH_SCHEME, ONESIGNAL_API_URL, USER_VIEWS_PER_SECOND_PER_APP, userByExternalIdPath } from './constants';
import { type AppLimiter, limiterForApp } from './limiter';

/**
 * Reading a user back (View user): the read-back verification's one vendor call. Reads have a
 * limit of their own (1 request per second per app, against 1,000 for updates), so they are
 * paced by a limiter of their own per app, shared by every reader of that app in this process.
 */

export type ViewedUser = { found: true; tags: Record<string, string> } | { found: false };

export interface UserReaderOptions {
  appId: string;
  apiKey: string;
  apiUrl?: string;
  timeoutMs?: number;
}

/** Transient answers (5xx, dropped connections, 429) are tried again, a few times, within one read. */
const READ_TRIES = 6;
const READ_BACKOFF: Backoff = { baseMs: 500, capMs: 10_000 };

/** The read limiter of an app: a separate registry entry from the update limiter of the same app. */
export function readLimiterForApp(appId: string): AppLimiter {
  return limiterForApp(`${appId}#view`, USER_VIEWS_PER_SECOND_PER_APP);
}

export class OneSignalUserReader {
  readonly appId: string;
  readonly limiter: AppLimiter;
  private readonly apiKey: string;
  private readonly apiUrl: string;
  private readonly timeoutMs: number;
  private sent = 0;

  constructor(opts: UserReaderOptions) {
    this.appId = opts.appId;
    this.apiKey = opts.apiKey;
    this.apiUrl = (opts.apiUrl ?? ONESIGNAL_API_URL).replace(/\/+$/, '');
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.limiter = readLimiterForApp(opts.appId);
  }

  /** HTTP requests sent, retries included. */
  get requests(): number {
    return this.sent;
  }

  /** The user's tags, or found=false when OneSignal has no user with this external id (404). */
  async viewUser(externalId: string, opts: { signal?: AbortSignal } = {}): Promise<ViewedUser> {
    if (!externalId) throw new AmpError('invalid_input', 'external id must not be empty');
    return withRetries(() => this.once(externalId, opts.signal), {
      backoff: READ_BACKOFF,
      tries: READ_TRIES,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  private async once(externalId: string, signal: AbortSignal | undefined): Promise<ViewedUser> {
    const settle = await this.limiter.acquire(undefined, signal);
    this.sent++;
    let res: Awaited<ReturnType<typeof httpRequest>>;
    try {
      res = await httpRequest(this.apiUrl + userByExternalIdPath(this.appId, externalId), {
        method: 'GET',
        headers: { authorization: `${AUTH_SCHEME} ${this.apiKey}`, accept: 'application/json' },
        timeoutMs: this.timeoutMs,
        ...(signal ? { signal } : {}),
      });
    } finally {
      settle();
    }
    // View user lists 404 for an unknown alias: the user is gone (or never was).
    if (res.status === 404) return { found: false };
    const err = classifyResponse(res, 'view_user');
    if (err) {
      if (err.code === 'rate_limited') this.limiter.onRateLimited(err.retryAfterMs ?? 0);
      throw err;
    }
    return { found: true, tags: tagsOf(res.text) };
  }
}

/** `properties.tags` of a View-user answer; values are strings (OneSignal keeps no other type). */
function tagsOf(text: string): Record<string, string> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new AmpError('vendor_rejected', 'OneSignal answered the user view with a body that is not JSON');
  }
  const tags = (body as { properties?: { tags?: unknown } } | null)?.properties?.tags;
  if (tags === undefined || tags === null) return {};
  if (typeof tags !== 'object' || Array.isArray(tags))
    throw new AmpError('vendor_rejected', 'OneSignal answered the user view with tags that are not an object');
  return Object.fromEntries(Object.entries(tags as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
}
