import cliProgress from 'cli-progress';
import type { RunProgress, RunView } from '../sync/run';

/** A human summary of a run (the --json form is the RunView itself). */
export function runSummary(r: RunView): string {
  const lines = [
    `run ${r.id} (sync ${r.sync_id}): ${r.status}${r.error ? ` — ${r.error}` : ''}`,
    `  members ${r.members} (skipped anonymous ${r.skipped_anonymous}); added ${r.added}, removed ${r.removed}, unchanged ${r.unchanged}`,
    `  delivered ${r.delivered}, not found ${r.not_found}, failed ${r.failed}, pending ${r.pending}; ${r.requests} request(s)`,
  ];
  if (r.status === 'held') {
    lines.push(`  held: ${r.hold_reason}`);
    lines.push(`  approve: ampsignal runs approve ${r.id}    reject: ampsignal runs reject ${r.id}`);
  }
  const s = r.sample as { adds?: string[]; removes?: string[] } | null;
  if (s && (r.status === 'held' || r.status === 'dry_run')) {
    if (s.adds?.length) lines.push(`  sample adds: ${s.adds.join(', ')}`);
    if (s.removes?.length) lines.push(`  sample removes: ${s.removes.join(', ')}`);
  }
  if (r.not_found + r.failed > 0) lines.push(`  records: ampsignal runs show ${r.id} --records failed|not_found|all`);
  return lines.join('\n');
}

/**
 * A progress bar on stderr, only for a person at a terminal: never with --json, never when
 * stderr is piped (logs stay clean). Returns the onProgress callback and a stop function.
 */
export function progressBar(json: boolean | undefined): { onProgress?: (p: RunProgress) => void; stop(): void } {
  if (json || !process.stderr.isTTY) return { stop() {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '{phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    onProgress(p) {
      if (p.phase !== 'deliver' || p.total < 1000) return;
      if (!started) {
        bar.start(p.total, p.done, { phase: 'delivering' });
        started = true;
      } else bar.update(p.done, { phase: 'delivering' });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
