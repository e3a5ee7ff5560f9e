import { AmpError } from '../../errors';
import type { SnapshotSource } from '../../sync/snapshot';

// Placeholder: the Amplitude download snapshot source arrives with the Amplitude-source issue.
export function amplitudeSnapshotSource(_cohortId: string): SnapshotSource {
  throw new AmpError('invalid_input', 'Amplitude cohort pulls are not available yet');
}
