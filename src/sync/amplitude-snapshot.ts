import type { Selectable } from 'kysely';
import { markDownload, reserveDownload } from '../connectors/amplitude/budget';
import { AmplitudeCohortsClient, type CohortsClientOptions } from '../connectors/amplitude/cohorts-api';
import { COHORT_FILE_USER_COLUMN } from '../connectors/amplitude/constants';
import { streamExternalIds } from '../connectors/amplitude/csv-stream';
import { getSource, sourceCredentials } from '../connectors/amplitude/sources';
import { AmpError, isAmpError } from '../errors';
import type { Context } from '../store';
import type { CohortsTable } from '../store/schema';
import type { SnapshotSource, StagingWriter } from './snapshot';

export interface AmplitudeSnapshotOptions {
  /** The Amplitude field that becomes the external id (the sync's external_id_property); default user_id. */
  externalIdProperty?: string;
  /** Client overrides (poll interval for tests and the emulator, an abort signal). */
  client?: Partial<Pick<CohortsClientOptions, 'pollIntervalMs' | 'tries' | 'maxWaitMs' | 'timeoutMs' | 'signal'>>;
  /** Told how many HTTP requests the pull sent to Amplitude. */
  onRequests?: (n: number) => void;
}

type Cohort = Selectable<CohortsTable>;

/**
 * A run's snapshot from Amplitude: one budgeted download (request → poll → file), streamed row
 * by row into the run's staging rows. Anything thrown leaves staging half-filled; the engine
 * discards it, so the ledger is untouched by a failed pull.
 */
export function amplitudeSnapshotSource(cohortId: string, opts: AmplitudeSnapshotOptions = {}): SnapshotSource {
  return {
    kind: 'amplitude',
    async load(ctx, runId, writer) {
      const cohort = await pullableCohort(ctx, cohortId);
      const source = await getSource(ctx, cohort.source_id!);
      const client = new AmplitudeCohortsClient({ ...sourceCredentials(ctx, source), ...(opts.client ?? {}) });
      try {
        const lastComputed = await refreshCohortMetadata(ctx, client, cohort);
        const downloadId = await reserveDownload(ctx, { sourceId: source.id, cohortId, runId });
        const property = opts.externalIdProperty ?? COHORT_FILE_USER_COLUMN;
        const result = await download(ctx, client, { cohort, downloadId, property, writer });
        return { skippedAnonymous: result.skippedAnonymous, sourceTs: lastComputed ?? Date.now() };
      } finally {
        opts.onRequests?.(client.requests);
      }
    },
  };
}

async function pullableCohort(ctx: Context, cohortId: string): Promise<Cohort> {
  const cohort = await ctx.store.db.selectFrom('cohorts').selectAll().where('id', '=', cohortId).executeTakeFirst();
  if (!cohort) throw new AmpError('not_found', `no cohort with id ${cohortId}`);
  if (!cohort.source_id) throw new AmpError('invalid_input', `cohort ${cohortId} has no Amplitude source to pull from`);
  return cohort;
}

/**
 * Fresh metadata first (free: listing is not a download); lastComputed becomes the snapshot's
 * source timestamp, so webhook deltas computed later still win.
 */
async function refreshCohortMetadata(
  ctx: Context,
  client: AmplitudeCohortsClient,
  cohort: Cohort,
): Promise<number | null> {
  try {
    const listed = (await client.listCohorts()).find((c) => c.id === cohort.id);
    if (!listed) return cohort.last_computed;
    const lastComputed = listed.last_computed ?? cohort.last_computed;
    await ctx.store.db
      .updateTable('cohorts')
      .set({ name: listed.name, size: listed.size, last_computed: lastComputed, updated_at: Date.now() })
      .where('id', '=', cohort.id)
      .execute();
    return lastComputed;
  } catch (e) {
    if (isAmpError(e) && e.kind === 'destination_fatal') throw e;
    // Metadata is a nicety; the download itself decides whether the pull works.
    return cohort.last_computed;
  }
}

/**
 * One download, counted (reserved) before the first request; every retry of every step (request,
 * polls, file) happens inside it. The cohort's size is the file's row count.
 */
async function download(
  ctx: Context,
  client: AmplitudeCohortsClient,
  d: { cohort: Cohort; downloadId: number; property: string; writer: StagingWriter },
): Promise<{ rows: number; skippedAnonymous: number }> {
  const requestId = await requestDownload(ctx, client, d);
  try {
    await client.waitUntilReady(requestId);
    // Staging is a set, so a file read again from the top after a cut adds nothing twice;
    // the anonymous count comes from the pass that finished.
    const result = await client.readFile(requestId, (body) =>
      streamExternalIds(body, d.property, (id) => d.writer.add(id)),
    );
    await markDownload(ctx, d.downloadId, 'completed');
    if (result.rows > 0 || d.cohort.size === null) {
      await ctx.store.db
        .updateTable('cohorts')
        .set({ size: result.rows, updated_at: Date.now() })
        .where('id', '=', d.cohort.id)
        .execute();
    }
    return result;
  } catch (e) {
    await markDownload(ctx, d.downloadId, 'failed');
    throw e;
  }
}

async function requestDownload(
  ctx: Context,
  client: AmplitudeCohortsClient,
  d: { cohort: Cohort; downloadId: number; property: string },
): Promise<string> {
  try {
    return await client.requestDownload(
      d.cohort.id,
      d.property === COHORT_FILE_USER_COLUMN ? {} : { propKeys: [d.property] },
    );
  } catch (e) {
    // A 4xx (auth, unknown cohort, throttled to the end) created no job: not a download.
    // A transport failure or a 5xx may have reached Amplitude: it keeps counting.
    const refused = isAmpError(e) && e.status !== undefined && e.status < 500 && e.status !== 408;
    await markDownload(ctx, d.downloadId, refused ? 'refused' : 'failed');
    throw e;
  }
}
