import { sql } from 'kysely';
import { AmpError } from '../errors';
import type { Context } from '../store';
import { decodeRecord, OUTCOME_CODE, type RecordOperation, type SettledOutcome } from './records';
import { getRunRow, OPEN_OUTCOME } from './runs';

/**
 * Reading a run's records (records.ts writes them): pages in user order with an opaque cursor,
 * filtered by outcome, and an export that streams them page by page, never holding a run's
 * records in memory. Settled records come from run_records (immutable); `pending` ones are the
 * ledger rows the run changed that are not sent yet or retrying, listed after the settled ones.
 */

export const RECORD_OUTCOMES = ['delivered', 'not_found', 'failed', 'pending'] as const;
export type RecordOutcome = (typeof RECORD_OUTCOMES)[number];

export interface RunRecord {
  external_id: string;
  operation: RecordOperation;
  outcome: SettledOutcome | 'pending';
  /** The vendor's HTTP status of the answer that settled it, when one came. */
  status: number | null;
  message: string | null;
  attempts: number;
  /** When it settled (ISO 8601, to the second); null while pending. */
  at: string | null;
}

export interface RecordPage {
  records: RunRecord[];
  /** Pass as `cursor` for the next page; null when no record remains. */
  next_cursor: string | null;
}

export const MAX_PAGE = 10_000;

/** Where a page starts: inside the settled records (after user, seq) or the pending rows (after user). */
type Position = { phase: 'settled'; user: string; seq: number } | { phase: 'pending'; user: string };

function encodeCursor(p: Position): string {
  return Buffer.from(JSON.stringify(p.phase === 'settled' ? ['s', p.user, p.seq] : ['p', p.user])).toString(
    'base64url',
  );
}

function decodeCursor(c: string): Position {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v[0] === 's' && typeof v[1] === 'string' && Number.isInteger(v[2]))
      return { phase: 'settled', user: v[1], seq: v[2] as number };
    if (Array.isArray(v) && v[0] === 'p' && typeof v[1] === 'string') return { phase: 'pending', user: v[1] };
  } catch {
    // falls through to the refusal below
  }
  throw new AmpError('invalid_input', 'cursor is not one this server gave out; start again without --cursor');
}

async function runKey(ctx: Context, runId: string): Promise<number | undefined> {
  const r = await ctx.store.db.selectFrom('run_keys').select('key').where('run_id', '=', runId).executeTakeFirst();
  return r ? Number(r.key) : undefined;
}

function codesFor(outcome: SettledOutcome): number[] {
  return [OUTCOME_CODE[outcome] * 2, OUTCOME_CODE[outcome] * 2 + 1];
}

async function settledPage(
  ctx: Context,
  key: number,
  outcome: SettledOutcome | undefined,
  after: { user: string; seq: number } | undefined,
  limit: number,
): Promise<Array<RunRecord & { seq: number }>> {
  const rows = await sql<{
    external_id: string;
    seq: number;
    code: number;
    status: number | null;
    attempts: number;
    at: number;
    text: string | null;
  }>`SELECT r.external_id, r.seq, r.code, r.status, r.attempts, r.at, m.text
    FROM run_records r LEFT JOIN record_messages m ON m.id = r.message_id
    WHERE r.run_key = ${key}
      ${after ? sql`AND (r.external_id, r.seq) > (${after.user}, ${after.seq})` : sql``}
      ${outcome ? sql`AND r.code IN (${sql.join(codesFor(outcome))})` : sql``}
    ORDER BY r.external_id, r.seq LIMIT ${limit}`.execute(ctx.store.db);
  return rows.rows.map((r) => {
    const d = decodeRecord(Number(r.code));
    return {
      external_id: r.external_id,
      seq: Number(r.seq),
      operation: d.operation,
      outcome: d.outcome,
      status: r.status === null ? null : Number(r.status),
      message: r.text,
      attempts: Number(r.attempts),
      at: new Date(Number(r.at) * 1000).toISOString(),
    };
  });
}

async function pendingPage(
  ctx: Context,
  runId: string,
  after: string | undefined,
  limit: number,
): Promise<RunRecord[]> {
  const rows = await ctx.store.db
    .selectFrom('ledger')
    .select(['external_id', 'desired', 'error', 'attempts'])
    .where('run_id', '=', runId)
    .where(OPEN_OUTCOME)
    .where((eb) => eb.or([eb('outcome', 'is', null), eb('outcome', '=', 'retry')]))
    .$if(after !== undefined, (q) => q.where('external_id', '>', after!))
    .orderBy('external_id')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    external_id: r.external_id,
    operation: Number(r.desired) === 1 ? 'add' : 'remove',
    outcome: 'pending',
    status: null,
    message: r.error,
    attempts: Number(r.attempts),
    at: null,
  }));
}

/**
 * One page of a run's records: settled ones in user order, then (without a filter, or with
 * `pending`) the pending ones. Each page asks for one row more than it returns to know whether
 * more remain, so a cursor never points past the end.
 */
export async function pageRunRecords(
  ctx: Context,
  runId: string,
  opts: { outcome?: RecordOutcome; limit?: number; cursor?: string } = {},
): Promise<RecordPage> {
  await getRunRow(ctx, runId);
  const limit = Math.max(1, Math.min(MAX_PAGE, opts.limit ?? 100));
  const pos: Position = opts.cursor
    ? decodeCursor(opts.cursor)
    : opts.outcome === 'pending'
      ? { phase: 'pending', user: '' }
      : { phase: 'settled', user: '', seq: -1 };
  const records: RunRecord[] = [];
  let pendingFrom = pos.user;
  if (pos.phase === 'settled') {
    const key = await runKey(ctx, runId);
    const after = pos.seq < 0 ? undefined : pos;
    const filter = opts.outcome as SettledOutcome | undefined;
    const rows = key === undefined ? [] : await settledPage(ctx, key, filter, after, limit + 1);
    for (const { seq: _seq, ...r } of rows.slice(0, limit)) records.push(r);
    if (rows.length > limit) {
      const last = rows[limit - 1]!;
      return page(records, { phase: 'settled', user: last.external_id, seq: last.seq });
    }
    // A settled outcome's list ends here; the whole list goes on with the pending rows.
    if (opts.outcome !== undefined) return page(records, null);
    pendingFrom = '';
  }
  const room = limit - records.length;
  const from = pendingFrom === '' ? undefined : pendingFrom;
  const rows = await pendingPage(ctx, runId, from, room + 1);
  records.push(...rows.slice(0, room));
  if (rows.length <= room) return page(records, null);
  return page(records, { phase: 'pending', user: room === 0 ? pendingFrom : rows[room - 1]!.external_id });
}

function page(records: RunRecord[], next: Position | null): RecordPage {
  return { records, next_cursor: next ? encodeCursor(next) : null };
}

/** Every record of a run, page by page (memory: one page). */
export async function* eachRunRecord(
  ctx: Context,
  runId: string,
  opts: { outcome?: RecordOutcome; pageSize?: number } = {},
): AsyncGenerator<RunRecord> {
  let cursor: string | undefined;
  do {
    const page = await pageRunRecords(ctx, runId, {
      ...(opts.outcome ? { outcome: opts.outcome } : {}),
      limit: opts.pageSize ?? 5_000,
      ...(cursor ? { cursor } : {}),
    });
    yield* page.records;
    cursor = page.next_cursor ?? undefined;
  } while (cursor);
}

export const EXPORT_FORMATS = ['csv', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

const CSV_COLUMNS = ['external_id', 'operation', 'outcome', 'status', 'message', 'attempts', 'at'] as const;

function csvField(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  // Quoted when it could break the row, and when a spreadsheet would read it as a formula.
  return /[",\r\n]|^[=+\-@\t]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The export's text, chunk by chunk (a header line first for CSV). */
export async function* exportRunRecords(
  ctx: Context,
  runId: string,
  format: ExportFormat,
  opts: { outcome?: RecordOutcome } = {},
): AsyncGenerator<string> {
  await getRunRow(ctx, runId);
  if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\n`;
  let chunk = '';
  for await (const r of eachRunRecord(ctx, runId, opts)) {
    chunk += format === 'csv' ? `${CSV_COLUMNS.map((c) => csvField(r[c])).join(',')}\n` : `${JSON.stringify(r)}\n`;
    if (chunk.length >= 64 * 1024) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}
