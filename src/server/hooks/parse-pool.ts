import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { checkWebhookBody, type WebhookSummary } from '../../connectors/amplitude/webhook-payload';
import { AmpError, type ErrorCode } from '../../errors';
import type { StoredBody } from '../../sync/cohort-webhooks';
import { log } from '../../telemetry/logger';

/**
 * Cohort-webhook bodies validated on worker threads. For a 1,000-user message (~90 kB) JSON.parse
 * and its garbage are most of the acknowledgement's cost, and on the request's own thread every
 * other request would wait behind it. Off the event loop, the loop only receives, stores and
 * answers.
 *
 * The worker runs the same checkWebhookBody as the in-thread path and returns the summary the
 * store needs with the text raw-deflated (level 1: ~50 µs there, and a tenth of the bytes for the
 * store to write on this thread). Small bodies stay in the thread, stored as text: posting one
 * costs more than parsing it.
 */
export const OFF_THREAD_MIN_BYTES = 16 * 1024;

const WORKER_URL = new URL('./parse-worker.mjs', import.meta.url);

/** A checked message and what to store of it. */
export interface CheckedWebhook {
  message: WebhookSummary;
  body: StoredBody;
}

type Reply =
  | { id: number; ok: WebhookSummary; deflated: Uint8Array }
  | { id: number; error: { code: ErrorCode; message: string } };

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (c: CheckedWebhook) => void; reject: (e: unknown) => void }>;
}

export class WebhookParsePool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  private unavailable = false;

  /** One worker per core left over from the event loop, at most two (the store is single-writer anyway). */
  constructor(private readonly size = Math.max(1, Math.min(2, availableParallelism() - 1))) {}

  /**
   * Throws (or rejects with) an `invalid_input` AmpError naming the problem. A large body goes to
   * the worker as bytes, moved rather than copied when it owns its memory: this thread never
   * decodes it.
   */
  check(raw: Buffer, receivedAt = Date.now()): Promise<CheckedWebhook> | CheckedWebhook {
    const slot = raw.length < OFF_THREAD_MIN_BYTES || this.closed || this.unavailable ? undefined : this.pick();
    if (!slot) {
      const text = raw.toString('utf8');
      return { message: checkWebhookBody(text, receivedAt), body: { text } };
    }
    const id = this.nextId++;
    const owned = raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength;
    const bytes = owned ? raw : new Uint8Array(raw);
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ id, bytes, receivedAt }, [bytes.buffer as ArrayBuffer]);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Starts every worker now (loading tsx and zod takes a few hundred ms), not on the first large message. */
  warm(): void {
    while (!this.closed && !this.unavailable && this.slots.length < this.size) if (!this.spawn()) break;
  }

  async close(): Promise<void> {
    this.closed = true;
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** The least busy worker, starting another while there is room and every one is busy. */
  private pick(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) if (!best || s.pending.size < best.pending.size) best = s;
    if (best && (best.pending.size === 0 || this.slots.length >= this.size)) return best;
    return this.spawn() ?? best;
  }

  private spawn(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(WORKER_URL);
    } catch (e) {
      // Validation still happens, in the thread; only the latency benefit is lost.
      this.unavailable = true;
      log.warn({ err: (e as Error).message }, 'cannot start webhook parse workers; parsing in the request thread');
      return undefined;
    }
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (r: Reply) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if ('ok' in r)
        p.resolve({
          message: r.ok,
          body: { deflated: Buffer.from(r.deflated.buffer, r.deflated.byteOffset, r.deflated.byteLength) },
        });
      else p.reject(new AmpError(r.error.code, r.error.message));
    });
    const lost = (why: string) => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      // Nothing was stored for these requests: a 5xx makes Amplitude send them again.
      for (const p of slot.pending.values())
        p.reject(new AmpError('internal', `the webhook parse worker stopped (${why})`));
      slot.pending.clear();
      if (!this.closed) log.error({ why }, 'webhook parse worker stopped; the next message starts another');
    };
    worker.on('error', (e) => lost(e.message));
    worker.on('exit', (code) => lost(`exit code ${code}`));
    this.slots.push(slot);
    return slot;
  }
}
