import type { Kysely } from 'kysely';
import type { Store } from '../store';
import type { DB } from '../store/schema';
import { OPEN_OUTCOME } from './runs';

/**
 * Run records: one immutable row per settled record of a run (migration 010), appended in the
 * transaction that writes the ledger outcome it mirrors (deliver.ts), so the history and the
 * ledger never disagree after a crash. A later run's retry appends to the later run; nothing here
 * updates or deletes a record except retention. Reading them is record-reads.ts.
 */

export type SettledOutcome = 'delivered' | 'not_found' | 'failed';
export type RecordOperation = 'add' | 'remove';

/** Outcome part of run_records.code (code = outcome × 2 + operation). */
export const OUTCOME_CODE: Record<SettledOutcome, number> = { delivered: 1, not_found: 2, failed: 3 };
const OUTCOME_OF_CODE: Record<number, SettledOutcome> = { 1: 'delivered', 2: 'not_found', 3: 'failed' };

export function recordCode(outcome: SettledOutcome, op: RecordOperation): number {
  return OUTCOME_CODE[outcome] * 2 + (op === 'remove' ? 1 : 0);
}

export function decodeRecord(code: number): { outcome: SettledOutcome; operation: RecordOperation } {
  return { outcome: OUTCOME_OF_CODE[Math.floor(code / 2)] ?? 'failed', operation: code % 2 === 1 ? 'remove' : 'add' };
}

/** One settled answer, as the delivery knows it. */
export interface RecordRow {
  runId: string;
  externalId: string;
  operation: RecordOperation;
  outcome: SettledOutcome;
  /** The vendor's HTTP status, when an answer came. */
  status: number | null;
  attempts: number;
  message: string | null;
  atMs: number;
}

/**
 * Keys and message ids are written once and never change, so a process remembers those it has
 * read back from a committed row (never one it inserted itself: that insert may still roll back
 * with the transaction it is in). Bounded: a long-lived worker sees many runs.
 */
const MAX_CACHED = 10_000;
class IdCache {
  private readonly m = new Map<string, number>();
  get(k: string): number | undefined {
    return this.m.get(k);
  }
  set(k: string, v: number): void {
    if (this.m.size >= MAX_CACHED) this.m.clear();
    this.m.set(k, v);
  }
}
const runKeys = new WeakMap<object, IdCache>();
const messageIds = new WeakMap<object, IdCache>();
function cacheFor(map: WeakMap<object, IdCache>, owner: object): IdCache {
  let c = map.get(owner);
  if (!c) {
    c = new IdCache();
    map.set(owner, c);
  }
  return c;
}

const SECOND = 1000;

/**
 * Run records are always written; only `npm run bench -- records` turns them off, to measure
 * what the history costs a delivery against the same delivery without it.
 */
export const recording = { on: true };

// ---------------------------------------------------------------------------------------------
// Inside the caller's transaction, on either database.

async function kyselyIds(
  trx: Kysely<DB>,
  cache: IdCache,
  values: string[],
  table: 'run_keys' | 'record_messages',
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const missing: string[] = [];
  for (const v of new Set(values)) {
    const c = cache.get(v);
    if (c === undefined) missing.push(v);
    else out.set(v, c);
  }
  if (missing.length === 0) return out;
  const read = async () =>
    table === 'run_keys'
      ? await trx.selectFrom('run_keys').select(['run_id as v', 'key as id']).where('run_id', 'in', missing).execute()
      : await trx.selectFrom('record_messages').select(['text as v', 'id']).where('text', 'in', missing).execute();
  const found = await read();
  for (const f of found) {
    out.set(f.v, Number(f.id));
    cache.set(f.v, Number(f.id));
  }
  const absent = missing.filter((v) => !out.has(v));
  if (absent.length === 0) return out;
  if (table === 'run_keys')
    await trx
      .insertInto('run_keys')
      .values(absent.map((run_id) => ({ run_id })))
      .onConflict((oc) => oc.column('run_id').doNothing())
      .execute();
  else
    await trx
      .insertInto('record_messages')
      .values(absent.map((text) => ({ text })))
      .onConflict((oc) => oc.column('text').doNothing())
      .execute();
  for (const f of await read()) out.set(f.v, Number(f.id));
  return out;
}

/**
 * Appends records inside the caller's transaction (delivery's settle, a diff's own settles).
 * `store` owns the id caches (one per database) and the engine's insert.
 */
export async function appendRecords(trx: Kysely<DB>, store: Pick<Store, 'engine'>, rows: RecordRow[]): Promise<void> {
  if (rows.length === 0 || !recording.on) return;
  const keys = await kyselyIds(
    trx,
    cacheFor(runKeys, store),
    rows.map((r) => r.runId),
    'run_keys',
  );
  const msgs = await kyselyIds(
    trx,
    cacheFor(messageIds, store),
    rows.flatMap((r) => (r.message === null ? [] : [r.message])),
    'record_messages',
  );
  await store.engine.insertRunRecords(
    trx,
    rows.map((r) => ({
      run_key: keys.get(r.runId)!,
      external_id: r.externalId,
      code: recordCode(r.outcome, r.operation),
      status: r.status,
      attempts: r.attempts,
      at: Math.floor(r.atMs / SECOND),
      message_id: r.message === null ? null : msgs.get(r.message)!,
    })),
  );
}

/**
 * Records of the changes a diff settled as it applied them, in its transaction: a removal of a
 * user OneSignal never knew (the add ended not_found) needs no request and stays not_found.
 * Found through the partial index of open rows (ledger_run_open). Returns how many.
 */
export async function recordSettledByDiff(
  trx: Kysely<DB>,
  store: Pick<Store, 'engine'>,
  runId: string,
  now = Date.now(),
): Promise<number> {
  const rows = await trx
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'attempts'])
    .where('run_id', '=', runId)
    .where('outcome', '=', 'not_found')
    .where(OPEN_OUTCOME)
    .execute();
  await appendRecords(
    trx,
    store,
    rows.map((r) => ({
      runId,
      externalId: r.external_id,
      operation: Number(r.desired) === 1 ? 'add' : 'remove',
      outcome: 'not_found',
      status: null,
      attempts: Number(r.attempts),
      message: 'not in OneSignal: nothing to remove',
      atMs: now,
    })),
  );
  return rows.length;
}

/** Records deleted per statement: a run's records go in key ranges of this many. */
const PRUNE_CHUNK = 5_000;

/**
 * Deletes the records of runs that ended before `cutoff` (at most about `room` rows per call; the
 * retention tick calls again every minute). Each run's records go by ranges of its primary key,
 * then its key, so a run whose records are all gone is not looked at again.
 */
export async function pruneRunRecords(db: Kysely<DB>, cutoff: number, room: number): Promise<number> {
  const expired = await db
    .selectFrom('run_keys')
    .innerJoin('runs', 'runs.id', 'run_keys.run_id')
    .select(['run_keys.key', 'run_keys.run_id'])
    .where('runs.status', '<>', 'running')
    .where((eb) => eb(eb.fn.coalesce('runs.finished_at', 'runs.started_at'), '<', cutoff))
    .execute();
  // Keys of runs deleted with their sync: nothing reads their records any more.
  const orphans = await db
    .selectFrom('run_keys')
    .select(['key', 'run_id'])
    .where((eb) => eb.not(eb.exists(eb.selectFrom('runs').select('id').whereRef('runs.id', '=', 'run_keys.run_id'))))
    .execute();
  let total = 0;
  for (const { key, run_id } of [...expired, ...orphans]) {
    for (;;) {
      if (total >= room) return total;
      const last = await db
        .selectFrom('run_records')
        .select('external_id')
        .where('run_key', '=', key)
        .orderBy('external_id')
        .offset(PRUNE_CHUNK - 1)
        .limit(1)
        .executeTakeFirst();
      const r = await db
        .deleteFrom('run_records')
        .where('run_key', '=', key)
        .$if(last !== undefined, (q) => q.where('external_id', '<=', last!.external_id))
        .executeTakeFirst();
      total += Number(r.numDeletedRows);
      if (last === undefined) break;
    }
    await db.deleteFrom('run_keys').where('key', '=', key).where('run_id', '=', run_id).execute();
  }
  return total;
}
