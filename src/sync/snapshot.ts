import type { Context, SnapshotStage } from '../store';

/**
 * A membership snapshot source for one run: a file-imported cohort (cohort_members), or an
 * Amplitude download streamed straight in. `load` writes the run's members where the diff reads
 * them through the writer (never collecting them in memory; duplicates are harmless) and
 * reports what it skipped. The engine finishes the writer after load() returns.
 */
export type StagingWriter = Pick<SnapshotStage, 'add' | 'flush' | 'addSelected'>;

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
