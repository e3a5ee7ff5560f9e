import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { request } from 'undici';
import { WEBHOOK_USER_AGENT } from './constants';
import type { ResolvedOptions } from './options';

/** Amplitude's default cohort-webhook payload. Source: https://amplitude.com/docs/data/destination-catalog/cohort-webhooks */
export interface WebhookPayload {
  cohort_name: string;
  cohort_id: string;
  in_cohort: boolean;
  computed_time: string;
  message_id: string;
  users: Array<{ user_id: string; user_properties: Record<string, unknown> }>;
}

export interface WebhookAttempt {
  messageId: string;
  cohortId: string;
  inCohort: boolean;
  users: number;
  attempt: number;
  /** HTTP status, or 0 for a transport failure/timeout. */
  status: number;
  error?: string;
  /** This send is a deliberate resend of an already delivered message (duplicateRate). */
  duplicate: boolean;
  at: number;
}

interface Message {
  payload: WebhookPayload;
  attempt: number;
  duplicate: boolean;
}

/**
 * Pushes cohort membership changes the way Amplitude's Webhook cohort destination does:
 * add and remove batches, retried with exponential backoff on non-2xx or timeout.
 * Messages of one cohort go out one after another (a failing message holds its cohort's
 * queue, so a receiver sees a cohort's changes in order); different cohorts in parallel.
 * [U] Amplitude documents no ordering at all; per-cohort order is the reading that keeps
 * receivers that compare second-granular computed_time deterministic.
 */
export class WebhookPusher {
  private readonly queue: Message[] = [];
  private readonly busyCohorts = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly log: WebhookAttempt[] = [];
  private inFlight = 0;
  private waiting = 0;
  private generation = 0;
  private closed = false;
  readonly emitter = new EventEmitter();
  delivered = 0;
  failed = 0;
  duplicates = 0;

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly random: () => number,
  ) {
    this.emitter.setMaxListeners(0);
  }

  get enabled(): boolean {
    return !!this.opts.webhookUrl;
  }

  /** Queues enter (or exit) messages for one membership change, in batches. */
  push(
    cohort: { id: string; name: string; lastComputed: number },
    inCohort: boolean,
    users: WebhookPayload['users'],
    updateId = randomUUID(),
  ): string[] {
    if (!this.enabled || users.length === 0) return [];
    const computed = String(cohort.lastComputed);
    const ids: string[] = [];
    for (let n = 0, i = 0; i < users.length; n++, i += this.opts.webhookBatchSize) {
      const payload: WebhookPayload = {
        cohort_name: cohort.name,
        cohort_id: cohort.id,
        in_cohort: inCohort,
        computed_time: computed,
        message_id: `${updateId}::${inCohort ? 'enter' : 'exit'}::${n}`,
        users: users.slice(i, i + this.opts.webhookBatchSize),
      };
      this.queue.push({ payload, attempt: 0, duplicate: false });
      ids.push(payload.message_id);
    }
    this.pump();
    return ids;
  }

  /** Messages queued, in flight or waiting for a retry. */
  pending(): number {
    return this.queue.length + this.inFlight + this.waiting;
  }

  attempts(): WebhookAttempt[] {
    return this.log.slice();
  }

  /** Resolves once nothing is pending (rejects after timeoutMs, naming what is left). */
  idle(timeoutMs = 30_000): Promise<void> {
    if (this.pending() === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onIdle = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.emitter.off('idle', onIdle);
        reject(new Error(`webhooks still pending after ${timeoutMs} ms: ${this.pending()}`));
      }, timeoutMs);
      this.emitter.once('idle', onIdle);
    });
  }

  reset(): void {
    this.generation++;
    this.queue.length = 0;
    this.busyCohorts.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.inFlight = 0;
    this.waiting = 0;
    this.log.length = 0;
    this.delivered = this.failed = this.duplicates = 0;
    this.emitter.emit('idle');
  }

  close(): void {
    this.closed = true;
    this.reset();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.opts.webhookConcurrency) {
      const idx = this.queue.findIndex((m) => !this.busyCohorts.has(m.payload.cohort_id));
      if (idx < 0) break;
      const [msg] = this.queue.splice(idx, 1);
      if (!msg) break;
      this.busyCohorts.add(msg.payload.cohort_id);
      this.inFlight++;
      void this.send(msg, this.generation);
    }
    if (this.pending() === 0) this.emitter.emit('idle');
  }

  private async send(msg: Message, generation: number): Promise<void> {
    msg.attempt++;
    let status = 0;
    let error: string | undefined;
    try {
      // The emulator is Amplitude's side: its own HTTP call, not the client code under test.
      const res = await request(this.opts.webhookUrl!, {
        method: 'POST',
        headers: {
          ...this.opts.webhookHeaders,
          'content-type': 'application/json',
          'user-agent': WEBHOOK_USER_AGENT,
        },
        body: JSON.stringify(msg.payload),
        headersTimeout: this.opts.webhookTimeoutMs,
        bodyTimeout: this.opts.webhookTimeoutMs,
      });
      const text = await res.body.text();
      status = res.statusCode;
      if (status < 200 || status > 299) error = text.slice(0, 200);
    } catch (e) {
      error = e instanceof Error ? e.message : String(e);
    }
    if (generation !== this.generation) return; // reset/close while in flight: forget it
    const ok = status >= 200 && status <= 299;
    const attempt: WebhookAttempt = {
      messageId: msg.payload.message_id,
      cohortId: msg.payload.cohort_id,
      inCohort: msg.payload.in_cohort,
      users: msg.payload.users.length,
      attempt: msg.attempt,
      status,
      duplicate: msg.duplicate,
      at: Date.now(),
      ...(error !== undefined ? { error } : {}),
    };
    this.log.push(attempt);
    this.emitter.emit('attempt', attempt);
    this.inFlight--;

    if (ok) {
      if (msg.duplicate) this.duplicates++;
      else {
        this.delivered++;
        // A resend of a delivered message, as happens when Amplitude's call times out after the
        // receiver already processed it: "may produce duplicate payloads".
        if (this.opts.duplicateRate > 0 && this.random() < this.opts.duplicateRate) {
          this.queue.unshift({ payload: msg.payload, attempt: 0, duplicate: true });
        }
      }
      this.busyCohorts.delete(msg.payload.cohort_id);
    } else if (msg.attempt <= this.opts.webhookRetries) {
      // Exponential backoff: base, 2×base, 4×base, … (the cohort keeps its slot, so order holds).
      const wait = this.opts.webhookBaseDelayMs * 2 ** (msg.attempt - 1);
      this.waiting++;
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (generation !== this.generation) return;
        this.waiting--;
        this.inFlight++;
        void this.send(msg, generation);
      }, wait);
      this.timers.add(t);
      this.pump();
      return;
    } else {
      if (msg.duplicate) this.duplicates++;
      else this.failed++;
      this.emitter.emit('failed', attempt);
      this.busyCohorts.delete(msg.payload.cohort_id);
    }
    this.pump();
  }
}
