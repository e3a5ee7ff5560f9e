import { z } from 'zod';
import {
  DEFAULT_HANG_MS,
  DEFAULT_RETRY_AFTER_SECONDS,
  emptyFaultCounts,
  type FaultKind,
  faultMixShape,
  rollFault,
} from '../faults';
import {
  BATCH_MAX_BYTES,
  COHORT_API_CONCURRENCY,
  COHORT_FILE_REDIRECT_TTL_MS,
  COHORT_REDIRECT_ABOVE,
  HTTP_V2_EPS_PER_ID,
  HTTP_V2_MAX_BYTES,
  HTTP_V2_MAX_EVENTS,
  HTTP_V2_MIN_ID_LENGTH,
  INSERT_ID_DEDUPE_WINDOW_MS,
  WEBHOOK_BASE_DELAY_MS,
  WEBHOOK_BATCH_SIZE,
  WEBHOOK_CONCURRENCY,
  WEBHOOK_MAX_CUSTOM_HEADERS,
  WEBHOOK_RETRIES,
  WEBHOOK_TIMEOUT_MS,
} from './constants';

const rate = z.number().min(0).max(1);

export const faultsSchema = z.object({
  /** Share of requests answered with a random 500/502/503/504. */
  errorRate: rate.optional(),
  /** Share of requests whose connection is destroyed without an answer. */
  dropRate: rate.optional(),
  /** Added before every answer (inside the cohort API's concurrency window). */
  latencyMs: z.number().int().min(0).max(600_000).optional(),
  /** The fault mix of ../faults.ts: faultRate, timeoutRate, lostRate, throttleRate, hangMs, retryAfterSeconds. */
  ...faultMixShape,
});
export type Faults = z.infer<typeof faultsSchema>;

/** Shared faults apply to both halves; `cohorts` / `events` override them per half. */
export const faultsInputSchema = faultsSchema.extend({
  cohorts: faultsSchema.optional(),
  events: faultsSchema.optional(),
});
export type FaultsInput = z.infer<typeof faultsInputSchema>;

export const memberSchema = z.object({
  user_id: z.string().min(1).optional(),
  amplitude_id: z.number().int().nonnegative().optional(),
  properties: z.record(z.string(), z.unknown()).optional(),
});
export type MemberInput = z.infer<typeof memberSchema>;

export const cohortInputSchema = z.object({
  id: z
    .string()
    .min(1)
    .regex(/^[A-Za-z0-9_-]+$/, 'cohort ids are letters, digits, _ and -'),
  name: z.string().min(1),
  description: z.string().optional(),
  /** Project (API key) owning the cohort; default: the first project. */
  apiKey: z.string().min(1).optional(),
  members: z.array(memberSchema).default([]),
});
export type CohortInput = z.input<typeof cohortInputSchema>;

export const emulatorOptionsSchema = z.object({
  projects: z
    .array(z.object({ apiKey: z.string().min(1), secretKey: z.string().min(1) }))
    .min(1, 'at least one project (apiKey + secretKey) is required'),
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
  /** Seeds the fault/duplicate dice so a failing run can be replayed. */
  seed: z.number().int().optional(),
  cohorts: z.array(cohortInputSchema).default([]),

  // cohorts half
  pollsBeforeReady: z.number().int().min(0).default(2),
  redirectAbove: z.number().int().min(0).default(COHORT_REDIRECT_ABOVE),
  redirectTtlMs: z.number().int().positive().default(COHORT_FILE_REDIRECT_TTL_MS),
  maxConcurrent: z.number().int().positive().default(COHORT_API_CONCURRENCY),
  tabPrefix: z.boolean().default(true),

  // events half
  epsThreshold: z.number().min(0).default(HTTP_V2_EPS_PER_ID),
  epsWindowMs: z.number().int().positive().default(1_000),
  maxEvents: z.number().int().positive().default(HTTP_V2_MAX_EVENTS),
  maxBytes: z.number().int().positive().default(HTTP_V2_MAX_BYTES),
  batchMaxBytes: z.number().int().positive().default(BATCH_MAX_BYTES),
  minIdLength: z.number().int().min(1).default(HTTP_V2_MIN_ID_LENGTH),
  dedupeWindowMs: z.number().int().positive().default(INSERT_ID_DEDUPE_WINDOW_MS),
  /** On a faulted 500/502/504 or a dropped connection, flip a coin whether the batch was ingested first. */
  ingestOnError: z.boolean().default(true),

  faults: faultsInputSchema.default({}),

  // cohort webhook push
  webhookUrl: z.url({ protocol: /^https?$/ }).optional(),
  webhookHeaders: z
    .record(z.string().min(1), z.string())
    .refine(
      (h) => Object.keys(h).length <= WEBHOOK_MAX_CUSTOM_HEADERS,
      `at most ${WEBHOOK_MAX_CUSTOM_HEADERS} custom webhook headers`,
    )
    .default({}),
  webhookBatchSize: z.number().int().positive().default(WEBHOOK_BATCH_SIZE),
  webhookRetries: z.number().int().min(0).default(WEBHOOK_RETRIES),
  webhookBaseDelayMs: z.number().int().min(0).default(WEBHOOK_BASE_DELAY_MS),
  webhookTimeoutMs: z.number().int().positive().default(WEBHOOK_TIMEOUT_MS),
  webhookConcurrency: z.number().int().positive().default(WEBHOOK_CONCURRENCY),
  /** Share of delivered webhook messages sent a second time (same message_id). */
  duplicateRate: rate.default(0),
});
export type AmplitudeEmulatorOptions = z.input<typeof emulatorOptionsSchema>;
export type ResolvedOptions = z.output<typeof emulatorOptionsSchema>;

/** Deterministic dice when seeded (mulberry32), else Math.random. */
export function makeRandom(seed?: number): () => number {
  if (seed === undefined) return Math.random;
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One scripted answer for the next request of a half: status 0 = drop the connection. */
export interface ForcedAnswer {
  status: number;
  body?: unknown;
  /** Events half, 5xx/drop only: process (ingest) the batch before answering. */
  ingest?: boolean;
  /** With status 0: hold the request unanswered until the client gives up (a timeout). */
  hang?: boolean;
  /** With status 0: apply the request (cohorts: a download request is made and counted), then drop the answer. */
  lost?: boolean;
  /** With status 429: the Retry-After sent, and the window announced. */
  retryAfterSeconds?: number;
}

/** Fault dice and scripted answers for one half. */
export class FaultPlan {
  private forced: ForcedAnswer[] = [];
  /** Faults dealt (scripted ones included), by kind. */
  counts: Record<FaultKind, number> = emptyFaultCounts();
  constructor(
    private faults: Faults,
    private readonly random: () => number,
  ) {}

  set(f: Faults): void {
    this.faults = f;
  }

  get latencyMs(): number {
    return this.faults.latencyMs ?? 0;
  }

  get hangMs(): number {
    return this.faults.hangMs ?? DEFAULT_HANG_MS;
  }

  forceNext(answer: ForcedAnswer, count = 1): void {
    for (let i = 0; i < count; i++) this.forced.push({ ...answer });
  }

  clear(): void {
    this.forced = [];
    this.counts = emptyFaultCounts();
  }

  /** The fault for this request, if any: a scripted answer first, then the dice. */
  next(): ForcedAnswer | undefined {
    const answer = this.forced.shift() ?? this.roll();
    if (answer) this.counts[kindOf(answer)]++;
    return answer;
  }

  private roll(): ForcedAnswer | undefined {
    switch (rollFault(this.faults, this.random)) {
      case 'drop':
        return { status: 0 };
      case 'error': {
        const statuses = [500, 502, 503, 504];
        return { status: statuses[Math.floor(this.random() * statuses.length)] ?? 500 };
      }
      case 'timeout':
        return { status: 0, hang: true, ingest: false };
      case 'lost':
        return { status: 0, lost: true, ingest: true };
      case 'throttle':
        return { status: 429, retryAfterSeconds: this.faults.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS };
      default:
        return undefined;
    }
  }
}

function kindOf(a: ForcedAnswer): FaultKind {
  if (a.status === 0) return a.hang ? 'timeout' : a.lost || a.ingest ? 'lost' : 'drop';
  return a.status === 429 ? 'throttle' : 'error';
}

export function splitFaults(f: FaultsInput): { cohorts: Faults; events: Faults } {
  const { cohorts, events, ...shared } = f;
  return { cohorts: { ...shared, ...(cohorts ?? {}) }, events: { ...shared, ...(events ?? {}) } };
}

export function delay(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}
