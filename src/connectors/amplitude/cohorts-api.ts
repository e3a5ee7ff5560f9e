import { request } from 'undici';
import { z } from 'zod';
import { AmpError, type Backoff, delay, retryDelayMs } from '../../errors';
import { type HttpResponse, httpAgent, httpRequest, parseRetryAfter } from '../http';
import {
  COHORT_DOWNLOAD_MAX_WAIT_MS,
  COHORT_FILE_PATH,
  COHORT_POLL_INTERVAL_MS,
  COHORT_POLL_MAX_ERRORS,
  COHORT_REQUEST_MAX_TRIES,
  COHORT_REQUEST_PATH,
  COHORT_STATUS_PATH,
  COHORTS_LIST_PATH,
} from './constants';

/** The Behavioral Cohorts API client: list cohorts, and the 3-step download (request → poll → file). */

export interface CohortsClientOptions {
  baseUrl: string;
  apiKey: string;
  secretKey: string;
  /** Poll interval for request-status; default COHORT_POLL_INTERVAL_MS or $AMPSIGNAL_AMPLITUDE_POLL_MS. */
  pollIntervalMs?: number;
  maxPollErrors?: number;
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

export class AmplitudeCohortsClient {
  private readonly base: string;
  private readonly auth: string;
  private readonly pollIntervalMs: number;
  private readonly maxPollErrors: number;
  private readonly maxWaitMs: number;
  private readonly timeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  /** HTTP requests sent to Amplitude (429s and retries included). */
  requests = 0;

  constructor(opts: CohortsClientOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.auth = `Basic ${Buffer.from(`${opts.apiKey}:${opts.secretKey}`).toString('base64')}`;
    this.pollIntervalMs = opts.pollIntervalMs ?? defaultPollInterval();
    this.maxPollErrors = opts.maxPollErrors ?? COHORT_POLL_MAX_ERRORS;
    this.maxWaitMs = opts.maxWaitMs ?? COHORT_DOWNLOAD_MAX_WAIT_MS;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.signal = opts.signal;
  }

  private async get(path: string): Promise<HttpResponse> {
    this.requests++;
    return httpRequest(this.base + path, {
      method: 'GET',
      headers: { authorization: this.auth, accept: 'application/json' },
      timeoutMs: this.timeoutMs,
      ...(this.signal ? { signal: this.signal } : {}),
    });
  }

  /** GET /api/3/cohorts. Does not count against the download budget. */
  async listCohorts(): Promise<AmplitudeCohort[]> {
    const res = await this.get(COHORTS_LIST_PATH);
    if (res.status !== 200) throw classify(res, 'listing cohorts');
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
   * project) or a 5xx is retried here after waiting; the caller counted the download once, before
   * the first try, and none of these retries counts again.
   */
  async requestDownload(
    cohortId: string,
    opts: {
      propKeys?: string[];
      /**
       * Called before re-sending after a transport failure or a 5xx: that request may have
       * reached Amplitude and been counted there, so the caller counts the retry as another
       * download. [U] Whether Amplitude counts such requests is undocumented; this is the
       * conservative reading. A 429 is known to be a refusal and never counts again.
       */
      beforeUncertainRetry?: () => Promise<void>;
    } = {},
  ): Promise<string> {
    const q = new URLSearchParams();
    if (opts.propKeys?.length) {
      q.set('props', '1');
      for (const k of opts.propKeys) q.append('propKeys', k);
    }
    const path = COHORT_REQUEST_PATH(cohortId) + (q.size ? `?${q}` : '');
    let lastErr: AmpError | undefined;
    for (let attempt = 1; attempt <= COHORT_REQUEST_MAX_TRIES; attempt++) {
      let res: HttpResponse;
      try {
        res = await this.get(path);
      } catch (e) {
        lastErr = e as AmpError;
        if (attempt >= COHORT_REQUEST_MAX_TRIES) break;
        await this.wait(retryDelayMs(COHORT_BACKOFF, attempt));
        await opts.beforeUncertainRetry?.();
        continue;
      }
      if (res.status === 202 || res.status === 200) {
        const body = requestAcceptedSchema.safeParse(safeJson(res.text));
        if (!body.success)
          throw new AmpError(
            'vendor_rejected',
            `Amplitude accepted the download of cohort ${cohortId} without a request_id`,
          );
        return body.data.request_id;
      }
      lastErr = classify(res, `requesting the download of cohort ${cohortId}`);
      if (!lastErr.retryable || attempt >= COHORT_REQUEST_MAX_TRIES) break;
      await this.wait(retryDelayMs(COHORT_BACKOFF, attempt, lastErr.retryAfterMs));
      if (res.status !== 429) await opts.beforeUncertainRetry?.();
    }
    throw lastErr ?? new AmpError('vendor_unavailable', `requesting the download of cohort ${cohortId} failed`);
  }

  /**
   * Step 2: polls request-status until 200 "JOB COMPLETED". 202 = still running; a 429 is not an
   * error (it only slows us); up to maxPollErrors other failures are tolerated, as the Experiment SDKs do.
   */
  async waitUntilReady(requestId: string): Promise<void> {
    const deadline = Date.now() + this.maxWaitMs;
    let errors = 0;
    for (;;) {
      if (Date.now() > deadline) {
        throw new AmpError(
          'vendor_unavailable',
          `Amplitude's download job ${requestId} did not finish within ${Math.round(this.maxWaitMs / 1000)} s`,
        );
      }
      let res: HttpResponse | undefined;
      try {
        res = await this.get(COHORT_STATUS_PATH(requestId));
      } catch (e) {
        if (++errors > this.maxPollErrors) throw e;
      }
      if (res) {
        if (res.status === 200) return;
        if (res.status === 429) {
          await this.wait(parseRetryAfter(res.headers['retry-after']) ?? this.pollIntervalMs);
          continue;
        }
        if (res.status !== 202) {
          const err = classify(res, `polling download job ${requestId}`);
          if (err.kind === 'destination_fatal' || ++errors > this.maxPollErrors) throw err;
        }
      }
      await this.wait(this.pollIntervalMs);
    }
  }

  /**
   * Step 3: GET …/file. Small files come inline; large ones as a 302 to a pre-signed S3 URL valid
   * for one minute, fetched at once and without our Authorization header. The link behind /file
   * stays valid for 7 days and yields a fresh S3 URL each call, so an expired one is retried once.
   * Returns the raw body stream (possibly gzip); the caller must consume or destroy it.
   */
  async openFile(requestId: string): Promise<AsyncIterable<Uint8Array> & { destroy(err?: Error): void }> {
    try {
      return await this.openFileOnce(requestId);
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

  private async openFileOnce(requestId: string): Promise<AsyncIterable<Uint8Array> & { destroy(err?: Error): void }> {
    for (let attempt = 1; ; attempt++) {
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
        // 403 from S3 = the one-minute link expired before we got there.
        if ((second.statusCode === 403 || second.statusCode >= 500) && attempt < 2) continue;
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

  private async wait(ms: number): Promise<void> {
    await delay(ms, this.signal);
  }
}

/** Amplitude's cohort API allows 5 concurrent requests a project: retries spread out, up to 30 s apart. */
const COHORT_BACKOFF: Backoff = { baseMs: 500, capMs: 30_000 };

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
