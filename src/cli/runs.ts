import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { z } from 'zod';
import { approveRun, type RunProgress, type RunView, rejectRun } from '../sync/run';
import { getRunView, listRuns, runRecords } from '../sync/runs';
import { emit, parseInput, withContext } from './output';

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
/**
 * Runs `fn` with a progress bar on stderr for long deliveries (a terminal, not --json). `fn`
 * spreads the given options into the run call: `{}` when there is no bar to feed.
 */
export async function withProgressBar<T>(
  quiet: boolean | undefined,
  fn: (progress: { onProgress?: (p: RunProgress) => void }) => Promise<T>,
): Promise<T> {
  if (quiet || !process.stderr.isTTY) return fn({});
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: '{phase} [{bar}] {value}/{total}', hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const onProgress = (p: RunProgress): void => {
    if (p.phase !== 'deliver' || p.total < 1000) return;
    if (!started) {
      bar.start(p.total, p.done, { phase: 'delivering' });
      started = true;
    } else bar.update(p.done, { phase: 'delivering' });
  };
  try {
    return await fn({ onProgress });
  } finally {
    if (started) bar.stop();
  }
}

/** Prints a finished run; a failed run makes the command exit 1. */
export function printRun(json: boolean | undefined, r: RunView): void {
  emit(json, r, () => runSummary(r));
  if (r.status === 'failed') process.exitCode = 1;
}

const idArg = z.string().trim().min(1, 'a run id is required');
const recordsSchema = z.enum(['failed', 'not_found', 'skipped', 'pending', 'delivered', 'all'], {
  error: 'must be one of failed, not_found, skipped, pending, delivered, all',
});

export function register(program: Command): void {
  const runs = program.command('runs');

  runs
    .command('show')
    .description('Show a run; --records lists its records with outcome and vendor error')
    .argument('<run_id>')
    .option('--records <which>', 'failed | not_found | skipped | pending | delivered | all')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { records?: string; json?: boolean }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      const which =
        flags.records === undefined
          ? undefined
          : parseInput(z.object({ records: recordsSchema }), { records: flags.records }).records;
      await withContext(cmd, async (ctx) => {
        const run = await getRunView(ctx, runId);
        if (!which) {
          emit(flags.json, run, () => runSummary(run));
          return;
        }
        const records = await runRecords(ctx, runId, which);
        emit(flags.json, { ...run, records }, () =>
          [
            runSummary(run),
            ...records.map((r) => `  ${r.external_id}  ${r.change}  ${r.outcome}${r.error ? `  ${r.error}` : ''}`),
          ].join('\n'),
        );
      });
    });

  runs
    .command('list')
    .description('List recent runs (newest first)')
    .option('--sync <sync_id>', 'only runs of this sync')
    .option('--limit <n>', 'how many (default 50)', '50')
    .option('--json', 'print JSON only')
    .action(async (flags: { sync?: string; limit: string; json?: boolean }, cmd: Command) => {
      const f = parseInput(
        z.object({
          sync: z.string().trim().min(1).optional(),
          limit: z.string().regex(/^\d+$/, 'must be a whole number').transform(Number),
        }),
        flags,
      );
      await withContext(cmd, async (ctx) => {
        const list = await listRuns(ctx, { ...(f.sync ? { syncId: f.sync } : {}), limit: f.limit });
        emit(flags.json, list, () =>
          list.length
            ? list
                .map(
                  (r) =>
                    `${r.id}  ${r.status}  +${r.added} -${r.removed}  delivered ${r.delivered}  ${new Date(r.started_at).toISOString()}`,
                )
                .join('\n')
            : 'No runs yet',
        );
      });
    });

  runs
    .command('approve')
    .description('Apply a held run (it was held by the removal guard) and deliver it')
    .argument('<run_id>')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        printRun(flags.json, await withProgressBar(flags.json, (progress) => approveRun(ctx, runId, progress)));
      });
    });

  runs
    .command('reject')
    .description('Discard a held run; the ledger and OneSignal stay as they were')
    .argument('<run_id>')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const r = await rejectRun(ctx, runId);
        emit(flags.json, r, () => runSummary(r));
      });
    });
}
