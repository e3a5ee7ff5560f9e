/**
 * The one error catalogue. Every failure that crosses a module boundary is an AmpError
 * with a code from here; retry and pause decisions read `kind`, never raw status codes.
 *
 * kinds:
 *  - retryable          try again later (network, timeout, 408, 429, 5xx, a stopped worker's cancelled work)
 *  - terminal           this record will not succeed as sent (other 4xx); recorded per record
 *  - destination_fatal  the destination itself is unusable (401/403): pause it, say so
 *  - skip               the record's target does not exist (OneSignal 404): counted, retried at the next reconcile
 *  - usage              the person at the keyboard gave bad input (CLI exit code 2, HTTP 4xx)
 *  - internal           a bug or an environment problem we cannot classify further
 */
export type ErrorKind = 'retryable' | 'terminal' | 'destination_fatal' | 'skip' | 'usage' | 'internal';

export const ERROR_CATALOGUE = {
  // input and lookup
  invalid_input: { kind: 'usage', http: 400 },
  not_found: { kind: 'usage', http: 404 },
  conflict: { kind: 'usage', http: 409 },
  unauthorized: { kind: 'usage', http: 401 },
  forbidden: { kind: 'usage', http: 403 },
  payload_too_large: { kind: 'usage', http: 413 },
  // storage
  database_unreachable: { kind: 'usage', http: 503 },
  migrations_pending: { kind: 'usage', http: 503 },
  secret_key_invalid: { kind: 'usage', http: 500 },
  // vendor transport and answers
  network: { kind: 'retryable', http: 502 },
  timeout: { kind: 'retryable', http: 504 },
  // stopped by its caller (a worker shutting down): not a failure of the work, so another try runs it
  aborted: { kind: 'retryable', http: 503 },
  rate_limited: { kind: 'retryable', http: 429 },
  vendor_unavailable: { kind: 'retryable', http: 502 },
  vendor_rejected: { kind: 'terminal', http: 502 },
  vendor_auth: { kind: 'destination_fatal', http: 502 },
  vendor_not_found: { kind: 'skip', http: 502 },
  budget_exhausted: { kind: 'usage', http: 409 },
  // run lifecycle
  run_state: { kind: 'usage', http: 409 },
  internal: { kind: 'internal', http: 500 },
} as const satisfies Record<string, { kind: ErrorKind; http: number }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export class AmpError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  /** HTTP status of the vendor answer that caused this, when there was one. */
  readonly status?: number;
  /** Vendor asked us to wait this long (Retry-After), in milliseconds. */
  readonly retryAfterMs?: number;
  readonly details?: Record<string, unknown>;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { status?: number; retryAfterMs?: number; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AmpError';
    this.code = code;
    this.kind = ERROR_CATALOGUE[code].kind;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    if (opts.details !== undefined) this.details = opts.details;
  }

  get retryable(): boolean {
    return this.kind === 'retryable';
  }

  get httpStatus(): number {
    return ERROR_CATALOGUE[this.code].http;
  }

  toJSON(): Record<string, unknown> {
    return { error: this.code, message: this.message, ...(this.details ?? {}) };
  }
}

export function isAmpError(e: unknown): e is AmpError {
  return e instanceof AmpError;
}

/** Wraps anything thrown into an AmpError so callers only ever see the catalogue. */
export function toAmpError(e: unknown): AmpError {
  if (e instanceof AmpError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new AmpError('internal', message, { cause: e });
}

/** The error a wait or a queued request rejects with when its caller's signal aborts. */
export function abortError(signal: AbortSignal): AmpError {
  const reason = signal.reason instanceof Error ? signal.reason.message : 'aborted';
  return new AmpError('aborted', `cancelled: ${reason}`);
}

// ---- The retry policy. Whether to retry is the error's kind (above); when is decided here. ----

export interface Backoff {
  /** The first retry waits at most this long. */
  baseMs: number;
  /** No retry waits longer than this, unless the vendor's Retry-After asks for more. */
  capMs: number;
}

/**
 * Full-jitter exponential backoff: the wait before retry number `attempt` (1 = the first retry)
 * is drawn uniformly from [0, min(cap, base × 2^(attempt−1))]. Spreading over the whole range,
 * not around its middle, is what keeps clients that failed together from retrying together
 * (AWS Architecture Blog, "Exponential Backoff And Jitter": the least contention and the fewest
 * calls of the schemes compared). A Retry-After is a floor: the vendor said when, so never sooner.
 */
export function retryDelayMs(backoff: Backoff, attempt: number, retryAfterMs?: number, random = Math.random): number {
  const ceiling = Math.min(backoff.capMs, backoff.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return Math.max(Math.floor(random() * ceiling), retryAfterMs ?? 0);
}

/**
 * Waits `ms`; rejects with abortError as soon as `signal` aborts (at once if it already has), so
 * nothing runs after a cancelled wait unless its caller catches the rejection on purpose.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Calls `fn` until it succeeds, retrying retryable catalogue errors (and whatever `retry` adds)
 * after retryDelayMs, at most `tries` calls in all. An abort stops the retries: the last error,
 * or abortError during a wait, is what the caller sees.
 */
export async function withRetries<T>(
  fn: (attempt: number) => Promise<T>,
  opts: {
    backoff: Backoff;
    tries: number;
    signal?: AbortSignal;
    retry?: (e: AmpError) => boolean;
    /** Called before each wait, with the error that caused it (for logs and tests). */
    onRetry?: (e: AmpError, attempt: number, waitMs: number) => void;
    random?: () => number;
  },
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const err = toAmpError(e);
      const retryable = opts.retry ? opts.retry(err) : err.retryable;
      if (!retryable || attempt >= opts.tries || opts.signal?.aborted) throw e;
      const wait = retryDelayMs(opts.backoff, attempt, err.retryAfterMs, opts.random);
      opts.onRetry?.(err, attempt, wait);
      await delay(wait, opts.signal);
    }
  }
}

// ---- Validation issues (zod's, or any with a path and a message) as one readable line. ----

/** One complaint about one field of an input; `path` is where in the input, as zod reports it. */
export interface InputIssue {
  path: readonly PropertyKey[];
  message: string;
}

/** Renders a field path the way a shell names it: `app_id` for the API, `--app-id` for the CLI. */
export type FieldLabel = (path: readonly PropertyKey[]) => string;

export const jsonPath: FieldLabel = (path) => path.map(String).join('.');

/**
 * The one writer of validation messages: `field: problem; field: problem`. The operations
 * validate once (src/app); each shell passes its own `label` to name fields its way.
 */
export function describeIssues(issues: readonly InputIssue[], label: FieldLabel = jsonPath): string {
  return issues.map((i) => (i.path.length ? `${label(i.path)}: ${i.message}` : i.message)).join('; ');
}

/**
 * An invalid_input error that carries its issues (as `fields` and `issues` in the API's JSON),
 * so a shell can name the fields again its own way with relabel().
 */
export function invalidInput(
  issues: readonly InputIssue[],
  opts: { label?: FieldLabel; prefix?: string } = {},
): AmpError {
  const text = describeIssues(issues, opts.label);
  const plain = issues.map((i) => ({ path: i.path.map(String), message: i.message }));
  return new AmpError('invalid_input', opts.prefix ? `${opts.prefix}: ${text}` : text, {
    details: {
      fields: plain.map((i) => i.path.join('.')).filter(Boolean),
      issues: plain.map((i) => ({ field: i.path.join('.'), message: i.message })),
    },
  });
}

/** The same error with its fields named by `label` (a CLI flag, a form field); anything else unchanged. */
export function relabel(e: unknown, label: FieldLabel): unknown {
  if (!(e instanceof AmpError) || e.code !== 'invalid_input') return e;
  const issues = e.details?.issues as Array<{ field: string; message: string }> | undefined;
  if (!Array.isArray(issues) || issues.length === 0) return e;
  const parsed = issues.map((i) => ({ path: i.field ? i.field.split('.') : [], message: i.message }));
  return new AmpError('invalid_input', describeIssues(parsed, label), { details: e.details, cause: e });
}

/** zod-like parse that throws invalidInput; the operations' one way to check what they are given. */
export function parseWith<T>(
  schema: {
    safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: readonly InputIssue[] } };
  },
  value: unknown,
  prefix?: string,
): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw invalidInput(r.error.issues, prefix === undefined ? {} : { prefix });
}
