import { AmpError } from '../../errors';
import { type HttpResponse, httpRequest } from '../http';
import { classifyResponse, type OneSignalOperation } from './classify';
import {
  AUTH_SCHEME,
  MAX_PROPERTY_UPDATES_PER_REQUEST,
  MAX_SEGMENT_NAME_LENGTH,
  MAX_SEGMENTS_PAGE,
  ONESIGNAL_API_URL,
  RATE_LIMIT_RETRY_DEADLINE_MS,
  segmentPath,
  segmentsPath,
  USER_UPDATES_PER_SECOND_PER_APP,
  userByExternalIdPath,
} from './constants';
import { type AppLimiter, limiterForApp } from './limiter';

export interface OneSignalClientOptions {
  appId: string;
  apiKey: string;
  apiUrl?: string;
  rateLimitPerSecond?: number;
  /** How long a request keeps retrying 429s before giving up with `rate_limited`. */
  rateLimitDeadlineMs?: number;
  timeoutMs?: number;
}

/** A segment's tag filter. Source: https://documentation.onesignal.com/reference/create-segments */
export type TagFilter =
  | { field: 'tag'; key: string; relation: 'exists' | 'not_exists' }
  | {
      field: 'tag';
      key: string;
      relation: '=' | '!=' | '>' | '<' | 'time_elapsed_gt' | 'time_elapsed_lt';
      value: string;
    };

export interface OneSignalSegment {
  id: string;
  name: string;
  [k: string]: unknown;
}

/**
 * OneSignal's own response timeout is 100 s (REQUEST_TIMEOUT_MS), but a tag PATCH only sets values,
 * so a repeat is harmless: we give up after 30 s and let the caller retry rather than hold a
 * pooled connection for 100 s.
 */
const DEFAULT_TIMEOUT_MS = 30_000;

/**
 * The OneSignal REST client for one app + key. Every request waits for the app's shared
 * limiter; 429s are absorbed here (pause the app, retry the same request) so they never spend
 * a record's retry budget; every other failure is thrown as a classified AmpError.
 */
export class OneSignalClient {
  readonly appId: string;
  readonly apiUrl: string;
  readonly limiter: AppLimiter;
  private readonly apiKey: string;
  private readonly rateLimitDeadlineMs: number;
  private readonly timeoutMs: number;
  private sent = 0;

  constructor(opts: OneSignalClientOptions) {
    this.appId = opts.appId;
    this.apiKey = opts.apiKey;
    this.apiUrl = (opts.apiUrl ?? ONESIGNAL_API_URL).replace(/\/+$/, '');
    this.limiter = limiterForApp(opts.appId, opts.rateLimitPerSecond ?? USER_UPDATES_PER_SECOND_PER_APP);
    this.rateLimitDeadlineMs = opts.rateLimitDeadlineMs ?? RATE_LIMIT_RETRY_DEADLINE_MS;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** HTTP requests sent by this client, 429s and retries included. */
  get requests(): number {
    return this.sent;
  }

  /** Checks the app id and key with the cheapest app-key-only call (reference §6). */
  async testConnection(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.call('test_connection', 'GET', `${segmentsPath(this.appId)}?limit=1`, undefined, undefined, opts.signal);
  }

  /**
   * Sets ("1") and deletes ("") tags on the user with this external id. At most 100 keys per
   * call (the vendor limit); the caller splits larger changes.
   */
  /**
   * `onRequest` hears of every request sent for this update (429s and their repeats included),
   * so a caller can charge them to the runs whose changes they carry.
   */
  async updateTags(
    externalId: string,
    tags: Record<string, string>,
    opts: { signal?: AbortSignal; onRequest?: () => void } = {},
  ): Promise<number> {
    const n = Object.keys(tags).length;
    if (n === 0) return 200;
    if (n > MAX_PROPERTY_UPDATES_PER_REQUEST) {
      throw new AmpError(
        'invalid_input',
        `${n} tag changes in one request; OneSignal accepts at most ${MAX_PROPERTY_UPDATES_PER_REQUEST} per request`,
      );
    }
    if (!externalId) throw new AmpError('invalid_input', 'external id must not be empty');
    const res = await this.call(
      'update_user',
      'PATCH',
      userByExternalIdPath(this.appId, externalId),
      { properties: { tags } },
      externalId,
      opts.signal,
      opts.onRequest,
    );
    return res.status;
  }

  /** Creates a segment of the users one tag filter selects; the name is cut to OneSignal's 128 characters. */
  async createSegment(name: string, filter: TagFilter, opts: { signal?: AbortSignal } = {}): Promise<{ id: string }> {
    const body = { name: name.slice(0, MAX_SEGMENT_NAME_LENGTH), filters: [filter] };
    const res = await this.call('create_segment', 'POST', segmentsPath(this.appId), body, undefined, opts.signal);
    const parsed = safeJson(res.text) as { id?: unknown } | undefined;
    if (!parsed || typeof parsed.id !== 'string' || !parsed.id) {
      throw new AmpError('vendor_rejected', 'OneSignal created the segment but returned no id', { status: res.status });
    }
    return { id: parsed.id };
  }

  /** One page of the app's segments (metadata only; OneSignal returns no filters). */
  async listSegments(
    opts: { offset?: number; limit?: number; signal?: AbortSignal } = {},
  ): Promise<{ total: number; segments: OneSignalSegment[] }> {
    const limit = Math.min(MAX_SEGMENTS_PAGE, Math.max(1, opts.limit ?? MAX_SEGMENTS_PAGE));
    const res = await this.call(
      'list_segments',
      'GET',
      `${segmentsPath(this.appId)}?offset=${opts.offset ?? 0}&limit=${limit}`,
      undefined,
      undefined,
      opts.signal,
    );
    const parsed = (safeJson(res.text) ?? {}) as { total_count?: unknown; segments?: unknown };
    const segments = Array.isArray(parsed.segments) ? (parsed.segments as OneSignalSegment[]) : [];
    return { total: typeof parsed.total_count === 'number' ? parsed.total_count : segments.length, segments };
  }

  /** Deletes a segment; an already-missing segment counts as deleted. */
  async deleteSegment(segmentId: string, opts: { signal?: AbortSignal } = {}): Promise<void> {
    try {
      await this.call(
        'delete_segment',
        'DELETE',
        segmentPath(this.appId, segmentId),
        undefined,
        undefined,
        opts.signal,
      );
    } catch (e) {
      if (e instanceof AmpError && e.status === 404) return;
      throw e;
    }
  }

  private async call(
    op: OneSignalOperation,
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body: unknown,
    userKey: string | undefined,
    signal: AbortSignal | undefined,
    onRequest?: () => void,
  ): Promise<HttpResponse> {
    const deadline = Date.now() + this.rateLimitDeadlineMs;
    const headers: Record<string, string> = {
      authorization: `${AUTH_SCHEME} ${this.apiKey}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json; charset=utf-8';
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (;;) {
      const settle = await this.limiter.acquire(userKey, signal);
      this.sent++;
      onRequest?.();
      let res: HttpResponse;
      let err: AmpError | null;
      try {
        res = await httpRequest(this.apiUrl + path, {
          method,
          headers,
          ...(payload !== undefined ? { body: payload } : {}),
          timeoutMs: this.timeoutMs,
          ...(signal ? { signal } : {}),
        });
        err = classifyResponse(res, op);
        // Paused before the slot is given back: settling wakes queued requests, which would
        // otherwise be let go after this 429 was read.
        if (err?.code === 'rate_limited') this.limiter.onRateLimited(err.retryAfterMs ?? 0);
      } finally {
        settle();
      }
      if (!err) return res;
      if (err.code !== 'rate_limited') throw err;
      const wait = err.retryAfterMs ?? 0;
      if (Date.now() + wait > deadline) {
        throw new AmpError(
          'rate_limited',
          `${err.message} (still rate limited after ${Math.round(this.rateLimitDeadlineMs / 1000)} s of retries)`,
          {
            status: 429,
            ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
            ...(err.details ? { details: err.details } : {}),
          },
        );
      }
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
