import type { Context } from '../store';

/**
 * A membership snapshot source for one run: a file-imported cohort (cohort_members), or an
 * Amplitude download streamed straight in. `load` writes the run's members into the staging
 * table through the writer (never collecting them in memory) and reports what it skipped.
 */
export interface StagingWriter {
  /** Adds one external id (already trimmed, non-empty) to this run's staging rows. Duplicates are harmless. */
  add(externalId: string): Promise<void> | void;
  /** Flushes buffered rows; called by the engine after load() returns. */
  flush(): Promise<void>;
}

export interface SnapshotLoadResult {
  /** Rows whose mapped id was missing (anonymous users): counted, never sent. */
  skippedAnonymous: number;
  /** The source's own timestamp for this membership (epoch ms), e.g. Amplitude's lastComputed. */
  sourceTs?: number;
}

export interface SnapshotSource {
  readonly kind: string;
  load(ctx: Context, runId: string, writer: StagingWriter): Promise<SnapshotLoadResult>;
}
