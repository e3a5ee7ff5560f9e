import { request } from 'undici';
import { z } from 'zod';
import { AmpError, type Backoff, delay, withRetries } from '../../errors';
import { type HttpResponse, httpAgent, httpRequest, parseRetryAfter } from '../http';
import {
  COHORT_DOWNLOAD_MAX_WAIT_MS,
  COHORT_FILE_PATH,
  COHORT_POLL_INTERVAL_MS,
  COHORT_REQUEST_MAX_TRIES,
  COHORT_REQUEST_PATH,
  COHORT_STATUS_PATH,
  COHORTS_LIST_PATH,
} from './constants';

export interface CohortsClientOptions {
  baseUrl: string;
  apiKey: string;
  secretKey: string;
  /** Poll interval for request-status; default COHORT_POLL_INTERVAL_MS or $AMPSIGNAL_AMPLITUDE_POLL_MS. */
  pollIntervalMs?: number;
  /** Calls per request before a retryable failure is final (1 = no retry, e.g. a credential check). */
  tries?: number;
  /** Give up waiting for a download job after this long. */
  maxWaitMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface AmplitudeCohort {
  id: string;
  name: string;
  size: number | null;
  /** Epoch ms (Amplitude sends epoch seconds). */
  last_computed: number | null;
  archived: boolean;
}

/** A cohort file's body as undici streams it: consume it or destroy it. */
export type FileBody = AsyncIterable<Uint8Array> & { destroy(err?: Error): void };

const cohortListSchema = z.object({
  cohorts: z.array(
    z.looseObject({
      id: z.union([z.string(), z.number()]).transform(String),
      name: z.string().nullish(),
      size: z.number().nullish(),
      lastComputed: z.union([z.number(), z.string()]).nullish(),
      archived: z.boolean().nullish(),
    }),
  ),
});

const requestAcceptedSchema = z.looseObject({ request_id: z.union([z.string(), z.number()]).transform(String) });

/** Amplitude times are epoch seconds; a value above 1e12 is already ms (be lenient with both). */
export function epochToMs(v: number | string | null | undefined): number | null {
  if (v === null || v === undefined || v === '') return null;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) return null;
  return n > 1e12 ? Math.round(n) : Math.round(n * 1000);
}

function defaultPollInterval(): number {
  const env = Number(process.env.AMPSIGNAL_AMPLITUDE_POLL_MS);
  return Number.isFinite(env) && env > 0 ? env : COHORT_POLL_INTERVAL_MS;
}

/** Amplitude's cohort API allows 5 concurrent requests a project: retries spread out, up to 30 s apart. */
const COHORT_BACKOFF: Backoff = { baseMs: 500, capMs: 30_000 };

/**
 * The Behavioral Cohorts API client: list cohorts, and the 3-step download (request → poll →
 * file). Every request, whichever step, is retried on a retryable failure (5xx, 408, 429 after
 * its Retry-After, a dropped connection, a timeout) with the project's retry policy, up to
 * COHORT_REQUEST_MAX_TRIES calls: at a 20% fault rate all of them fail with probability
 * 0.2^8 ≈ 3e-6. None of these retries is another download: the caller counts the download once.
 */
export class AmplitudeCohortsClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly pollIntervalMs: number;
  private readonly tries: number;
  private readonly maxWaitMs: number;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  /** HTTP requests sent to Amplitude (429s and retries included). */
  requests = 0;

  constructor(opts: CohortsClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${opts.apiKey}:${opts.secretKey}`).toString('base64')}`;
    this.pollIntervalMs = opts.pollIntervalMs ?? defaultPollInterval();
    this.tries = Math.max(1, opts.tries ?? COHORT_REQUEST_MAX_TRIES);
    this.maxWaitMs = opts.maxWaitMs ?? COHORT_DOWNLOAD_MAX_WAIT_MS;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.signal = opts.signal;
  }

  /** `fn` under the retry policy. */
  private retrying<T>(fn: () => Promise<T>): Promise<T> {
    return withRetries(fn, {
      backoff: COHORT_BACKOFF,
      tries: this.tries,
      ...(this.signal ? { signal: this.signal } : {}),
    });
  }

  /** One GET whose answer must have status `ok` (else a classified error), retried. */
  private getExpecting(path: string, ok: (status: number) => boolean, what: string): Promise<HttpResponse> {
    return this.retrying(async () => {
      this.requests++;
      const res = await httpRequest(this.base + path, {
        method: 'GET',
        headers: { authorization: this.auth, accept: 'application/json' },
        timeoutMs: this.timeoutMs,
        ...(this.signal ? { signal: this.signal } : {}),
      });
      if (!ok(res.status)) throw classify(res, what);
      return res;
    });
  }

  /** GET /api/3/cohorts. Does not count against the download budget. */
  async listCohorts(): Promise<AmplitudeCohort[]> {
    const res = await this.getExpecting(COHORTS_LIST_PATH, (s) => s === 200, 'listing cohorts');
    const parsed = cohortListSchema.safeParse(safeJson(res.text));
    if (!parsed.success)
      throw new AmpError(
        'vendor_rejected',
        `Amplitude's cohort list is not in the expected shape: ${parsed.error.issues[0]?.message}`,
      );
    return parsed.data.cohorts.map((c) => ({
      id: c.id,
      name: c.name ?? c.id,
      size: c.size ?? null,
      last_computed: epochToMs(c.lastComputed),
      archived: c.archived ?? false,
    }));
  }

  /**
   * Step 1: GET /api/5/cohorts/request/:id → 202 {request_id}. A 429 (5 concurrent requests per
   * project), a 5xx or a transport failure is retried. [U] Whether Amplitude counts a request
   * whose answer was a 5xx or was lost is undocumented; the budget counts one download per pull
   * all the same, so a flaky network never spends the month's downloads on retries.
   */
  async requestDownload(cohortId: string, opts: { propKeys?: string[] } = {}): Promise<string> {
    const q = new URLSearchParams();
    if (opts.propKeys?.length) {
      q.set('props', '1');
      for (const k of opts.propKeys) q.append('propKeys', k);
    }
    const path = COHORT_REQUEST_PATH(cohortId) + (q.size ? `?${q}` : '');
    const res = await this.getExpecting(
      path,
      (s) => s === 202 || s === 200,
      `requesting the download of cohort ${cohortId}`,
    );
    const body = requestAcceptedSchema.safeParse(safeJson(res.text));
    if (!body.success)
      throw new AmpError(
        'vendor_rejected',
        `Amplitude accepted the download of cohort ${cohortId} without a request_id`,
      );
    return body.data.request_id;
  }

  /**
   * Step 2: polls request-status until 200 "JOB COMPLETED"; 202 = still running. Each poll is a
   * request like any other, retried on its own: the Experiment SDKs' 3 errors in all would fail a
   * long job's download at a modest fault rate.
   */
  async waitUntilReady(requestId: string): Promise<void> {
    const deadline = Date.now() + this.maxWaitMs;
    for (;;) {
      if (Date.now() > deadline) {
        throw new AmpError(
          'vendor_unavailable',
          `Amplitude's download job ${requestId} did not finish within ${Math.round(this.maxWaitMs / 1000)} s`,
        );
      }
      const res = await this.getExpecting(
        COHORT_STATUS_PATH(requestId),
        (s) => s === 200 || s === 202,
        `polling download job ${requestId}`,
      );
      if (res.status === 200) return;
      await delay(this.pollIntervalMs, this.signal);
    }
  }

  /**
   * Step 3: GET …/file, read by `consume`. Small files come inline; large ones as a 302 to a
   * pre-signed S3 URL valid for one minute, fetched at once and without our Authorization header.
   * The link behind /file stays valid for 7 days and yields a fresh S3 URL each call, so any
   * retryable failure (a 5xx, an expired S3 link, a transfer cut midway) fetches /file again and
   * `consume` reads the new body from the top: it must be idempotent (staging is a set).
   */
  async readFile<T>(requestId: string, consume: (body: FileBody) => Promise<T>): Promise<T> {
    try {
      return await this.retrying(async () => {
        const body = await this.openFileOnce(requestId);
        try {
          return await consume(body);
        } catch (e) {
          body.destroy();
          throw e;
        }
      });
    } catch (e) {
      const err = e as AmpError;
      if (err instanceof AmpError && !err.message.includes('cohort file')) {
        throw new AmpError(err.code, `cohort file of download ${requestId}: ${err.message}`, {
          cause: e,
          ...(err.status !== undefined ? { status: err.status } : {}),
        });
      }
      throw e;
    }
  }

  private async openFileOnce(requestId: string): Promise<FileBody> {
    const first = await this.stream(this.base + COHORT_FILE_PATH(requestId), { authorization: this.auth });
    if (first.statusCode === 200) return first.body;
    if (first.statusCode >= 300 && first.statusCode < 400) {
      const location = first.headers.location;
      await first.body.dump().catch(() => {});
      const loc = Array.isArray(location) ? location[0] : location;
      if (!loc)
        throw new AmpError(
          'vendor_rejected',
          `Amplitude redirected the cohort file of ${requestId} without a Location`,
        );
      const target = new URL(loc, this.base + COHORT_FILE_PATH(requestId)).toString();
      const second = await this.stream(target, {});
      if (second.statusCode === 200) return second.body;
      const text = await second.body.text().catch(() => '');
      // 403 from S3 = the one-minute link expired before we got there: /file mints a fresh one.
      if (second.statusCode === 403)
        throw new AmpError('vendor_unavailable', `the cohort file's pre-signed link of ${requestId} expired`, {
          status: 403,
        });
      throw classify(
        { status: second.statusCode, headers: second.headers, text },
        `downloading the cohort file of ${requestId} from its redirect`,
      );
    }
    const text = await first.body.text().catch(() => '');
    throw classify(
      { status: first.statusCode, headers: first.headers, text },
      `downloading the cohort file of ${requestId}`,
    );
  }

  private async stream(url: string, headers: Record<string, string>) {
    this.requests++;
    try {
      // undici's request never follows redirects on its own: we want to see the 302.
      return await request(url, {
        dispatcher: httpAgent,
        method: 'GET',
        headers,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        signal: this.signal ?? null,
      });
    } catch (e) {
      const err = e as { code?: string; message?: string };
      throw new AmpError(
        err.code === 'UND_ERR_HEADERS_TIMEOUT' ? 'timeout' : 'network',
        `GET ${new URL(url).origin}: ${err.code ?? err.message}`,
        { cause: e },
      );
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

/** One place that turns an Amplitude cohort-API answer into a catalogue error. */
export function classify(res: HttpResponse, what: string): AmpError {
  const detail = res.text.slice(0, 300).replace(/\s+/g, ' ').trim();
  const msg = `Amplitude answered ${res.status} ${what}${detail ? `: ${detail}` : ''}`;
  const opts = { status: res.status };
  if (res.status === 429) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    return new AmpError('rate_limited', msg, retryAfterMs === undefined ? opts : { ...opts, retryAfterMs });
  }
  if (res.status === 401 || res.status === 403)
    return new AmpError('vendor_auth', `${msg} (check the source's API key and secret key)`, opts);
  if (res.status === 404) return new AmpError('vendor_rejected', msg, opts);
  if (res.status === 408 || res.status >= 500) return new AmpError('vendor_unavailable', msg, opts);
  return new AmpError('vendor_rejected', msg, opts);
}
