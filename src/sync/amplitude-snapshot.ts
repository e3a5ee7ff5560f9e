import { markDownload, reserveDownload } from '../connectors/amplitude/budget';
import { AmplitudeCohortsClient, type CohortsClientOptions } from '../connectors/amplitude/cohorts-api';
import { COHORT_FILE_USER_COLUMN } from '../connectors/amplitude/constants';
import { streamExternalIds } from '../connectors/amplitude/csv-stream';
import { getSource, sourceCredentials } from '../connectors/amplitude/sources';
import { AmpError, isAmpError } from '../errors';
import type { SnapshotSource } from './snapshot';

export interface AmplitudeSnapshotOptions {
  /** The Amplitude field that becomes the external id (the sync's external_id_property); default user_id. */
  externalIdProperty?: string;
  /** Client overrides (poll interval for tests and the emulator, an abort signal). */
  client?: Partial<Pick<CohortsClientOptions, 'pollIntervalMs' | 'tries' | 'maxWaitMs' | 'timeoutMs' | 'signal'>>;
  /** Told how many HTTP requests the pull sent to Amplitude. */
  onRequests?: (n: number) => void;
}

/**
 * A run's snapshot from Amplitude: one budgeted download (request → poll → file), streamed row
 * by row into the run's staging rows. Anything thrown leaves staging half-filled; the engine
 * discards it, so the ledger is untouched by a failed pull.
 */
export function amplitudeSnapshotSource(cohortId: string, opts: AmplitudeSnapshotOptions = {}): SnapshotSource {
  return {
    kind: 'amplitude',
    async load(ctx, runId, writer) {
      const db = ctx.store.db;
      const cohort = await db.selectFrom('cohorts').selectAll().where('id', '=', cohortId).executeTakeFirst();
      if (!cohort) throw new AmpError('not_found', `no cohort with id ${cohortId}`);
      if (!cohort.source_id)
        throw new AmpError('invalid_input', `cohort ${cohortId} has no Amplitude source to pull from`);
      const source = await getSource(ctx, cohort.source_id);
      const property = opts.externalIdProperty ?? COHORT_FILE_USER_COLUMN;
      const client = new AmplitudeCohortsClient({ ...sourceCredentials(ctx, source), ...(opts.client ?? {}) });

      try {
        // Fresh metadata first (free: listing is not a download); lastComputed becomes the
        // snapshot's source timestamp, so webhook deltas computed later still win.
        let lastComputed = cohort.last_computed;
        try {
          const listed = (await client.listCohorts()).find((c) => c.id === cohortId);
          if (listed) {
            lastComputed = listed.last_computed ?? lastComputed;
            await db
              .updateTable('cohorts')
              .set({ name: listed.name, size: listed.size, last_computed: lastComputed, updated_at: Date.now() })
              .where('id', '=', cohortId)
              .execute();
          }
        } catch (e) {
          if (isAmpError(e) && e.kind === 'destination_fatal') throw e;
          // Metadata is a nicety; the download itself decides whether the pull works.
        }

        // One download, counted before the first request; every retry of every step below
        // (request, polls, file) happens inside it.
        const downloadId = await reserveDownload(ctx, { sourceId: source.id, cohortId, runId });
        let requestId: string;
        try {
          requestId = await client.requestDownload(
            cohortId,
            property === COHORT_FILE_USER_COLUMN ? {} : { propKeys: [property] },
          );
        } catch (e) {
          // A 4xx (auth, unknown cohort, throttled to the end) created no job: not a download.
          // A transport failure or a 5xx may have reached Amplitude: it keeps counting.
          const refused = isAmpError(e) && e.status !== undefined && e.status < 500 && e.status !== 408;
          await markDownload(ctx, downloadId, refused ? 'refused' : 'failed');
          throw e;
        }
        try {
          await client.waitUntilReady(requestId);
          // Staging is a set, so a file read again from the top after a cut adds nothing twice;
          // the anonymous count comes from the pass that finished.
          const result = await client.readFile(requestId, (body) =>
            streamExternalIds(body, property, (id) => writer.add(id)),
          );
          await markDownload(ctx, downloadId, 'completed');
          if (result.rows > 0 || cohort.size === null) {
            await db
              .updateTable('cohorts')
              .set({ size: result.rows, updated_at: Date.now() })
              .where('id', '=', cohortId)
              .execute();
          }
          return { skippedAnonymous: result.skippedAnonymous, sourceTs: lastComputed ?? Date.now() };
        } catch (e) {
          await markDownload(ctx, downloadId, 'failed');
          throw e;
        }
      } finally {
        opts.onRequests?.(client.requests);
      }
    },
  };
}
