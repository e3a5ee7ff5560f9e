import { sql } from 'kysely';
import { AmpError } from '../errors';
import type { Context } from '../store';
import { decodeRecord, type RecordOperation, type SettledOutcome } from './records';
import { selectNamedSyncs } from './syncs';

/**
 * `user show`: why does this user (not) have a cohort's tag? For each sync the user is in or
 * was in: whether the tag is wanted (`in_cohort`) and what OneSignal was last confirmed to carry,
 * the ledger's current outcome, and the user's last records across the sync's runs (kept
 * AMPSIGNAL_RECORD_RETENTION_DAYS). Found by primary key: the ledger's (sync, user) and the
 * records' (run, user), never a scan of either.
 */

export type UserSyncState = 'in_sync' | 'pending' | 'not_found' | 'failed';

export interface UserRecordView {
  run_id: string;
  trigger: string;
  operation: RecordOperation;
  outcome: SettledOutcome;
  status: number | null;
  message: string | null;
  attempts: number;
  at: string;
}

export interface UserSyncView {
  sync_id: string;
  cohort_id: string;
  cohort_name: string | null;
  destination_id: string;
  destination_name: string | null;
  tag_key: string;
  /** The newest membership we have seen: the tag is wanted. null: no ledger row any more. */
  in_cohort: boolean | null;
  /** OneSignal acknowledged carrying the tag. */
  tag_confirmed: boolean | null;
  state: UserSyncState | null;
  /** The ledger's outcome of the current wish and the vendor's message. */
  last_outcome: string | null;
  last_error: string | null;
  updated_at: string | null;
  /** The user's last records in this sync's runs, newest first. */
  records: UserRecordView[];
}

export interface UserView {
  external_id: string;
  syncs: UserSyncView[];
}

const RECENT_RECORDS = 10;
const MAX_ID_LENGTH = 1000;

function stateOf(row: { desired: number; confirmed: number; outcome: string | null }): UserSyncState {
  if (Number(row.desired) === Number(row.confirmed)) return 'in_sync';
  if (row.outcome === 'not_found') return 'not_found';
  if (row.outcome === 'failed') return 'failed';
  return 'pending';
}

export async function showUser(ctx: Context, externalId: string, opts: { recent?: number } = {}): Promise<UserView> {
  const id = externalId.trim();
  if (id.length === 0 || id.length > MAX_ID_LENGTH)
    throw new AmpError('invalid_input', `an external id is 1 to ${MAX_ID_LENGTH} characters`);
  const syncs = await allSyncs(ctx);
  if (syncs.length === 0) return { external_id: id, syncs: [] };
  const ledger = await ctx.store.db
    .selectFrom('ledger')
    .select(['sync_id', 'desired', 'confirmed', 'outcome', 'error', 'updated_at'])
    .where(
      'sync_id',
      'in',
      syncs.map((s) => s.id),
    )
    .where('external_id', '=', id)
    .execute();
  const rowOf = new Map(ledger.map((l) => [l.sync_id, l]));
  const bySync = await recentRecords(ctx, id, opts.recent ?? RECENT_RECORDS);
  const out: UserSyncView[] = [];
  for (const s of syncs) {
    const l = rowOf.get(s.id);
    const records = bySync.get(s.id) ?? [];
    if (l || records.length > 0) out.push(syncViewOf(s, l, records));
  }
  return { external_id: id, syncs: out };
}

type SyncInfo = Awaited<ReturnType<typeof allSyncs>>[number];
type LedgerInfo = {
  desired: number;
  confirmed: number;
  outcome: string | null;
  error: string | null;
  updated_at: number;
};

function allSyncs(ctx: Context) {
  return selectNamedSyncs(ctx)
    .select(['syncs.id', 'syncs.cohort_id', 'syncs.destination_id', 'syncs.tag_key'])
    .orderBy('syncs.created_at')
    .execute();
}

/** The user's last `recent` records per sync, newest first, each found by the records' key (run, user). */
async function recentRecords(ctx: Context, id: string, recent: number): Promise<Map<string, UserRecordView[]>> {
  const records = await sql<{
    sync_id: string;
    run_id: string;
    trigger: string;
    code: number;
    status: number | null;
    attempts: number;
    at: number;
    text: string | null;
  }>`SELECT runs.sync_id, runs.id AS run_id, runs.trigger, r.code, r.status, r.attempts, r.at, m.text
    FROM run_keys k
    JOIN runs ON runs.id = k.run_id
    JOIN run_records r ON r.run_key = k.key AND r.external_id = ${id}
    LEFT JOIN record_messages m ON m.id = r.message_id
    ORDER BY r.at DESC, k.key DESC, r.seq DESC`.execute(ctx.store.db);
  const bySync = new Map<string, UserRecordView[]>();
  for (const r of records.rows) {
    const list = bySync.get(r.sync_id) ?? [];
    bySync.set(r.sync_id, list);
    if (list.length >= recent) continue;
    const d = decodeRecord(Number(r.code));
    list.push({
      run_id: r.run_id,
      trigger: r.trigger,
      operation: d.operation,
      outcome: d.outcome,
      status: r.status === null ? null : Number(r.status),
      message: r.text,
      attempts: Number(r.attempts),
      at: new Date(Number(r.at) * 1000).toISOString(),
    });
  }
  return bySync;
}

function syncViewOf(s: SyncInfo, l: LedgerInfo | undefined, records: UserRecordView[]): UserSyncView {
  return {
    sync_id: s.id,
    cohort_id: s.cohort_id,
    cohort_name: s.cohort_name,
    destination_id: s.destination_id,
    destination_name: s.destination_name,
    tag_key: s.tag_key,
    in_cohort: l ? Number(l.desired) === 1 : null,
    tag_confirmed: l ? Number(l.confirmed) === 1 : null,
    state: l ? stateOf(l) : null,
    last_outcome: l ? (l.outcome === 'retry' ? 'pending' : l.outcome) : null,
    last_error: l?.error ?? null,
    updated_at: l ? new Date(Number(l.updated_at)).toISOString() : null,
    records,
  };
}

/** A person's answer to "why does this user (not) have the tag?", one block per sync. */
export function userSummary(u: UserView): string {
  if (u.syncs.length === 0) return `user ${u.external_id}: in no sync (never in a synced cohort, or forgotten)`;
  const lines = [`user ${u.external_id}:`];
  for (const s of u.syncs) {
    const cohort = s.cohort_name ?? s.cohort_id;
    const dest = s.destination_name ?? s.destination_id;
    lines.push(`  sync ${s.sync_id} (${cohort} → ${dest}), tag ${s.tag_key}`);
    if (s.in_cohort === null) lines.push('    no longer in the ledger (left, and the removal settled)');
    else {
      const wanted = s.in_cohort ? 'wanted' : 'not wanted';
      const carried = s.tag_confirmed ? 'carried by OneSignal' : 'not carried by OneSignal';
      const why = s.state === 'in_sync' ? '' : ` — ${s.state}${s.last_error ? `: ${s.last_error}` : ''}`;
      lines.push(`    tag ${wanted}, ${carried}${why} (since ${s.updated_at})`);
    }
    for (const r of s.records)
      lines.push(
        `    ${r.at}  ${r.run_id} (${r.trigger})  ${r.operation} ${r.outcome}${r.status === null ? '' : ` ${r.status}`}${r.message ? `  ${r.message}` : ''}`,
      );
  }
  return lines.join('\n');
}
