import { Agent, type Dispatcher, request } from 'undici';
import { AmpError } from '../errors';

/**
 * The one HTTP agent for every vendor call (never undici's global dispatcher, which other
 * libraries may replace). Keep-alive pools per origin; connection count is bounded so a
 * burst of deliveries cannot open thousands of sockets.
 */
export const httpAgent = new Agent({
  connections: 128,
  pipelining: 1,
  keepAliveTimeout: 10_000,
  keepAliveMaxTimeout: 60_000,
  headersTimeout: 30_000,
  bodyTimeout: 120_000,
});

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * A request whose transport failures come back as catalogue errors (network/timeout, both
 * retryable) and whose body is always read, so sockets are returned to the pool.
 */
export async function httpRequest(
  url: string,
  opts: {
    method: Dispatcher.HttpMethod;
    headers?: Record<string, string>;
    body?: string | Buffer;
    timeoutMs?: number;
    signal?: AbortSignal;
  },
): Promise<HttpResponse> {
  try {
    const res = await request(url, {
      dispatcher: httpAgent,
      method: opts.method,
      headers: opts.headers ?? {},
      body: opts.body ?? null,
      headersTimeout: opts.timeoutMs ?? 30_000,
      bodyTimeout: opts.timeoutMs ?? 30_000,
      signal: opts.signal ?? null,
    });
    const text = await res.body.text();
    return { status: res.statusCode, headers: res.headers, text };
  } catch (e) {
    const err = e as { code?: string; name?: string; message?: string };
    const timedOut =
      err.code === 'UND_ERR_HEADERS_TIMEOUT' || err.code === 'UND_ERR_BODY_TIMEOUT' || err.name === 'TimeoutError';
    throw new AmpError(
      timedOut ? 'timeout' : 'network',
      `${opts.method} ${new URL(url).origin}: ${err.code ?? err.message ?? String(e)}`,
      {
        cause: e,
      },
    );
  }
}

/** Retry-After in seconds or an HTTP date, as milliseconds; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs) && secs >= 0) return Math.ceil(secs * 1000);
  const date = Date.parse(v);
  if (!Number.isNaN(date)) return Math.max(0, date - now);
  return undefined;
}
