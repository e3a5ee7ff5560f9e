import type { Context } from '../../store';

// Placeholder: the download-budget check arrives with the Amplitude-source issue.
export async function assertCadenceFitsBudget(_ctx: Context, _sourceId: string, _cadence: string): Promise<void> {}
