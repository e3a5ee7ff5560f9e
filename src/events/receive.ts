import { AmpError } from '../errors';
import type { Context, StreamEventRow } from '../store';
import { log } from '../telemetry/logger';
import { cohortTagMatcher } from './cohort-tags';
import { type MapOptions, type MappedEvent, mapOneSignalEvent } from './map';
import type { CachedStream } from './streams';

/**
 * Receiving: validate, map, and store a webhook body in the stream's outbox, durably, in one
 * transaction, deduplicated on (stream, OneSignal event.id).
 *
 * Partial-rejection rule (documented in docs/onesignal-event-stream.md): in an array, valid
 * elements are stored and the answer is 200 with their count plus `rejected: [{index, problem}]`;
 * if no element is valid (or a single event is invalid) the answer is 400 and nothing is stored.
 * Why: OneSignal retries a failed request as a whole, so a 400 for one bad element would make the
 * good ones fail too until the stream is disabled; a malformed element is never stored.
 */
export interface ReceiveResult {
  accepted: number;
  duplicates: number;
  /** Accepted but not forwardable (no user or device id): stored as dead letters with the reason. */
  dead_lettered: number;
  rejected: Array<{ index: number; problem: string }>;
}

export async function receiveEvents(
  ctx: Context,
  stream: CachedStream,
  body: unknown,
  receivedAt = Date.now(),
): Promise<ReceiveResult> {
  const single = !Array.isArray(body);
  const items = single ? [body] : (body as unknown[]);
  if (items.length === 0)
    throw new AmpError('invalid_input', 'the body is an empty array: send one event or an array of events');
  const matcher = cohortTagMatcher(ctx);
  const cohortIds = typeof matcher === 'function' ? matcher : await matcher;
  const rejected: ReceiveResult['rejected'] = [];
  const rows: StreamEventRow[] = [];
  const seen = new Set<string>();
  let inBodyDuplicates = 0;
  for (let i = 0; i < items.length; i++) {
    const m = mapOneElement(items[i], { eventNames: stream.eventNames, cohortIdsFromTags: cohortIds, receivedAt });
    if (!m.ok) {
      rejected.push({ index: i, problem: m.problem });
      continue;
    }
    if (seen.has(m.eventId)) {
      inBodyDuplicates++;
      continue;
    }
    seen.add(m.eventId);
    rows.push({
      stream_id: stream.row.id,
      event_id: m.eventId,
      kind: m.kind.slice(0, 256),
      payload: JSON.stringify(m.amplitude),
      status: m.deadReason ? 'dead' : 'pending',
      next_attempt_at: receivedAt,
      reason: m.deadReason ?? null,
      received_at: receivedAt,
    });
  }
  if (rows.length === 0) {
    const what = single
      ? `the event is invalid: ${rejected[0]?.problem}`
      : `no valid event in the array: ${rejected.map((r) => `[${r.index}] ${r.problem}`).join('; ')}`;
    throw new AmpError('invalid_input', what, { details: { rejected } });
  }

  const inserted = await storeRows(ctx, stream.row.id, rows, inBodyDuplicates);
  let dead = 0;
  for (const r of rows) if (r.status === 'dead' && inserted.has(r.event_id)) dead++;
  return {
    accepted: inserted.size,
    duplicates: rows.length - inserted.size + inBodyDuplicates,
    dead_lettered: dead,
    rejected,
  };
}

/**
 * mapOneSignalEvent never throws by design; should a bug make it throw on some element, that
 * element alone is refused (its siblings are still stored) and the log gets the details.
 */
function mapOneElement(raw: unknown, opts: MapOptions): MappedEvent {
  try {
    return mapOneSignalEvent(raw, opts);
  } catch (e) {
    log.error({ err: e }, 'mapping a OneSignal event threw');
    return { ok: false, problem: 'the event could not be read (the server log has the details)' };
  }
}

function storeRows(ctx: Context, streamId: string, rows: StreamEventRow[], extra: number): Promise<Set<string>> {
  return ctx.store.engine.insertStreamEvents({ streamId, rows, extra });
}
