import type { Insertable } from 'kysely';
import type { Context } from '../../src/store';
import type { CohortsTable, DestinationsTable, StreamEventsTable, StreamsTable } from '../../src/store/schema';

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
