import type { Insertable } from 'kysely';
import type { Context } from '../../src/store';
import type {
  CohortsTable,
  DestinationsTable,
  LedgerTable,
  SourcesTable,
  StreamEventsTable,
  StreamsTable,
  SyncsTable,
} from '../../src/store/schema';

// Rows the owners' commands would normally create, inserted directly so a test sets every
// column itself. Secrets are given in plain text and stored encrypted, as the commands do.

export type DestinationSeed = Pick<DestinationsTable, 'id' | 'name' | 'app_id' | 'api_url'> & {
  api_key: string;
} & Partial<Omit<DestinationsTable, 'api_key_enc'>>;

/** An active OneSignal destination with the default settings, unless `fields` says otherwise. */
export async function seedDestination(ctx: Context, { api_key, ...fields }: DestinationSeed): Promise<void> {
  await ctx.store.db
    .insertInto('destinations')
    .values({
      kind: 'onesignal',
      source_id: null,
      tag_key_template: 'amp_cohort_{cohort_id}',
      external_id_property: 'user_id',
      max_tags_per_user: 10,
      rate_limit_per_second: 1000,
      status: 'active',
      status_reason: null,
      created_at: Date.now(),
      ...fields,
      api_key_enc: ctx.secrets.encrypt(api_key),
    })
    .execute();
}

export type CohortSeed = Pick<CohortsTable, 'id' | 'name'> & Partial<Insertable<CohortsTable>>;

/** A file cohort with no source, never computed unless `fields` says otherwise; `updated_at` defaults to `created_at`. */
export async function seedCohort(ctx: Context, fields: CohortSeed): Promise<void> {
  const created = fields.created_at ?? Date.now();
  await ctx.store.db
    .insertInto('cohorts')
    .values({
      source_id: null,
      origin: 'file',
      size: 0,
      last_computed: null,
      created_at: created,
      updated_at: created,
      ...fields,
    })
    .execute();
}

export type StreamSeed = Pick<StreamsTable, 'id' | 'name'> & {
  amplitude_api_key: string;
  webhook_secret: string;
} & Partial<Omit<StreamsTable, 'amplitude_api_key_enc' | 'webhook_secret_enc'>>;

/** An active event stream to Amplitude's US region. */
export async function seedStream(
  ctx: Context,
  { amplitude_api_key, webhook_secret, ...fields }: StreamSeed,
): Promise<void> {
  await ctx.store.db
    .insertInto('streams')
    .values({
      region: 'us',
      amplitude_url: null,
      event_names: null,
      status: 'active',
      status_reason: null,
      duplicates: 0,
      forwarded_total: 0,
      created_at: Date.now(),
      ...fields,
      amplitude_api_key_enc: ctx.secrets.encrypt(amplitude_api_key),
      webhook_secret_enc: ctx.secrets.encrypt(webhook_secret),
    })
    .execute();
}

export type StreamEventSeed = Pick<StreamEventsTable, 'event_id' | 'status'> &
  Partial<Omit<Insertable<StreamEventsTable>, 'stream_id'>>;

/**
 * Outbox rows of one stream, all received and due at `now`; forwarded ones were forwarded then
 * (and counted in the stream's total, as the forwarder does), dead ones tried once.
 */
export async function seedStreamEvents(
  ctx: Context,
  streamId: string,
  rows: StreamEventSeed[],
  now = Date.now(),
): Promise<void> {
  const forwarded = rows.filter((r) => r.status === 'forwarded').length;
  if (forwarded > 0) {
    await ctx.store.db
      .updateTable('streams')
      .set((eb) => ({ forwarded_total: eb('forwarded_total', '+', forwarded) }))
      .where('id', '=', streamId)
      .execute();
  }
  await ctx.store.db
    .insertInto('stream_events')
    .values(
      rows.map((row) => ({
        stream_id: streamId,
        kind: 'push.clicked',
        payload: '{}',
        attempts: row.status === 'dead' ? 1 : 0,
        next_attempt_at: now,
        reason: null,
        received_at: now,
        forwarded_at: row.status === 'forwarded' ? now : null,
        ...row,
      })),
    )
    .execute();
}

export type SyncSeed = Pick<SyncsTable, 'id' | 'cohort_id' | 'destination_id'> & Partial<Insertable<SyncsTable>>;

/** An active manual sync tagging `amp_cohort_<id>`, unless `fields` says otherwise. */
export async function seedSync(ctx: Context, fields: SyncSeed): Promise<void> {
  await ctx.store.db
    .insertInto('syncs')
    .values({
      cadence: 'manual',
      tag_key: `amp_cohort_${fields.id}`,
      external_id_property: 'user_id',
      segment_id: null,
      segment_error: null,
      guard_threshold: 0.5,
      status: 'active',
      next_run_at: null,
      last_run_id: null,
      created_at: Date.now(),
      ...fields,
    })
    .execute();
}

/**
 * A sync with a destination and a file cohort of its own, named after `key`: destination
 * `dst_<key>` (app `app_<key>`, unreachable URL), cohort `coh_<key>`, sync `key` unless `sync.id` says.
 */
export async function seedSyncWithParts(
  ctx: Context,
  key: string,
  sync: Partial<Insertable<SyncsTable>> = {},
  destination: Partial<DestinationSeed> = {},
): Promise<void> {
  await seedDestination(ctx, {
    id: `dst_${key}`,
    name: `d_${key}`,
    app_id: `app_${key}`,
    api_url: 'http://127.0.0.1:9',
    api_key: 'k',
    ...destination,
  });
  await seedCohort(ctx, { id: `coh_${key}`, name: `c_${key}` });
  await seedSync(ctx, { id: key, cohort_id: `coh_${key}`, destination_id: `dst_${key}`, ...sync });
}

export type LedgerSeed = Pick<LedgerTable, 'sync_id' | 'destination_id' | 'external_id' | 'desired'> &
  Partial<Insertable<LedgerTable>>;

/** Ledger rows never tried and unleased (confirmed 0, source time 1), unless a row says otherwise. */
export async function seedLedger(ctx: Context, rows: LedgerSeed[]): Promise<void> {
  if (!rows.length) return;
  await ctx.store.db
    .insertInto('ledger')
    .values(
      rows.map((row) => ({
        confirmed: 0,
        source_ts: 1,
        run_id: null,
        outcome: null,
        error: null,
        attempts: 0,
        next_attempt_at: null,
        lease_owner: null,
        lease_until: null,
        updated_at: 1,
        ...row,
      })),
    )
    .execute();
}

export type SourceSeed = Pick<SourcesTable, 'id' | 'name' | 'download_budget'> &
  Partial<Omit<SourcesTable, 'api_key_enc' | 'secret_key_enc' | 'webhook_secret_enc'>>;

/** An Amplitude source in the US region with throw-away keys, stored encrypted as `source add` does. */
export async function seedSource(ctx: Context, fields: SourceSeed): Promise<void> {
  await ctx.store.db
    .insertInto('sources')
    .values({
      kind: 'amplitude',
      region: 'us',
      api_url: null,
      created_at: Date.now(),
      ...fields,
      api_key_enc: ctx.secrets.encrypt('a'),
      secret_key_enc: ctx.secrets.encrypt('b'),
      webhook_secret_enc: ctx.secrets.encrypt('c'),
    })
    .execute();
}
