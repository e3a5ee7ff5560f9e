import { randomUUID } from 'node:crypto';
import { KeyedWindows, RollingWindow } from './window';

export type Tags = Record<string, string>;

/** Null-prototype so a tag named "__proto__" is just a tag. */
export function emptyTags(): Tags {
  return Object.create(null) as Tags;
}

/** A user record; `null` stands for a seeded user that has no tags yet (millions stay cheap). */
export interface UserRecord {
  onesignalId: string;
  tags: Tags;
}

export interface SegmentFilter {
  field?: string;
  key?: string;
  relation?: string;
  value?: string;
  operator?: string;
  [k: string]: unknown;
}

export interface SegmentRecord {
  id: string;
  name: string;
  filters: SegmentFilter[];
  created_at: string;
  updated_at: string;
  app_id: string;
  read_only: boolean;
  is_active: boolean;
}

export interface Limits {
  rateLimitPerSecond: number;
  perUserPerSecond: number;
  viewRateLimitPerSecond: number;
  maxTagsPerUser: number;
}

export interface Faults {
  errorRate: number;
  dropRate: number;
  latencyMs: number;
  /** Share of requests given one of the five faults of ../faults.ts, split evenly. */
  faultRate: number;
  timeoutRate: number;
  lostRate: number;
  throttleRate: number;
  hangMs: number;
  retryAfterSeconds: number;
}

/** Behaviour switches that are not limits or faults. */
export interface Behaviour {
  /**
   * Answer 202 to an update of an unknown user without applying anything. OneSignal's own API
   * description lists only 202/400/409/429 for the user update: 202 means accepted, not applied.
   */
  acceptUnknownUsers: boolean;
}

export interface AppStats {
  requests: number;
  /** Requests to the rate-limited user endpoints that the limiters let through. */
  accepted: number;
  rateLimited: number;
  /** Largest number of accepted user-endpoint requests in any rolling 1000 ms window. */
  maxPerSecond: number;
  perUserViolations: number;
  /** Requests that arrived inside a Retry-After window this emulator announced (app, view or user scope). */
  retryAfterViolations: number;
}

export interface EmulatorStats {
  requests: number;
  byStatus: Record<string, number>;
  byApp: Record<string, AppStats>;
  perUserViolations: number;
  rateLimited: number;
  /** Connections closed unanswered by the drop fault. */
  dropped: number;
  /** 5xx answers of the error fault. */
  faulted: number;
  /** Requests held past the client's timeout. */
  timedOut: number;
  /** Requests applied whose answer was then dropped. */
  lost: number;
  /** Injected 429s (with Retry-After). */
  throttled: number;
  retryAfterViolations: number;
  /** Updates of unknown users answered 202 and not applied (acceptUnknownUsers). */
  unknownAccepted: number;
}

/** Everything the emulator knows about one OneSignal app. */
export class AppState {
  readonly users = new Map<string, UserRecord | null>();
  readonly segments: SegmentRecord[] = [];
  readonly window = new RollingWindow();
  readonly viewWindow = new RollingWindow();
  readonly perUser = new KeyedWindows();
  stats: Omit<AppStats, 'maxPerSecond'> = freshAppStats();

  constructor(
    readonly appId: string,
    readonly apiKey: string,
  ) {}

  getTags(externalId: string): Tags | undefined {
    if (!this.users.has(externalId)) return undefined;
    return this.users.get(externalId)?.tags ?? emptyTags();
  }

  /** The user's record, materialising a seeded placeholder on first write. */
  record(externalId: string): UserRecord | undefined {
    const rec = this.users.get(externalId);
    if (rec) return rec;
    if (rec === undefined) return undefined;
    const created = { onesignalId: randomUUID(), tags: emptyTags() };
    this.users.set(externalId, created);
    return created;
  }

  seed(ids: Iterable<string>): number {
    let added = 0;
    for (const id of ids) {
      if (!this.users.has(id)) {
        this.users.set(id, null);
        added++;
      }
    }
    return added;
  }

  appStats(): AppStats {
    return { ...this.stats, maxPerSecond: this.window.maxInWindow };
  }

  reset(): void {
    this.users.clear();
    this.segments.length = 0;
    this.window.clear();
    this.viewWindow.clear();
    this.perUser.clear();
    this.stats = freshAppStats();
  }
}

function freshAppStats(): Omit<AppStats, 'maxPerSecond'> {
  return { requests: 0, accepted: 0, rateLimited: 0, perUserViolations: 0, retryAfterViolations: 0 };
}

/** Generates `user-<start>` … `user-<start+count-1>` lazily. */
export function* seededIds(count: number, start = 0): Generator<string> {
  for (let i = start; i < start + count; i++) yield `user-${i}`;
}
