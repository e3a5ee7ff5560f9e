import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { z } from 'zod';
import {
  approve,
  EXPORT_FORMATS,
  exportRecords,
  listRuns,
  MAX_PAGE,
  RECORD_OUTCOMES,
  type RecordOutcome,
  type RecordPage,
  type RunView,
  reject,
  retryFailed,
  runRecords,
  showRun,
} from '../app/runs';
import type { DownloadNote } from '../sync/last-snapshot';
import type { RunRecord } from '../sync/record-reads';
import type { RunProgress } from '../sync/run';
import { emit, parseInput, withContext } from './output';

/** A human summary of a run (the --json form is the RunView itself). */
export function runSummary(r: RunView): string {
  const lines = [
    `run ${r.id} (sync ${r.sync_id}): ${r.status}${r.error ? ` — ${r.error}` : ''}`,
    `  members ${r.members} (skipped anonymous ${r.skipped_anonymous}); added ${r.added}, removed ${r.removed}, retried ${r.retried}, unchanged ${r.unchanged}`,
    `  delivered ${r.delivered}, not found ${r.not_found}, failed ${r.failed}, pending ${r.pending}; ${r.requests} request(s)`,
  ];
  if (r.status === 'held') {
    lines.push(`  held: ${r.hold_reason}`);
    lines.push(`  approve: ampsignal runs approve ${r.id}    reject: ampsignal runs reject ${r.id}`);
  }
  if (r.status === 'dry_run' && r.hold_reason) lines.push(`  note: ${r.hold_reason}`);
  const s = r.sample as { adds?: string[]; removes?: string[]; download?: DownloadNote } | null;
  if (s?.download && r.status === 'dry_run') lines.push(`  ${downloadLine(s.download)}`);
  if (s && (r.status === 'held' || r.status === 'dry_run')) {
    if (s.adds?.length) lines.push(`  sample adds: ${s.adds.join(', ')}`);
    if (s.removes?.length) lines.push(`  sample removes: ${s.removes.join(', ')}`);
  }
  if (r.failed > 0 && (r.status === 'completed' || r.status === 'failed'))
    lines.push(`  ${r.failed} failed for good; deliver them again: ampsignal runs retry ${r.id}`);
  if (r.delivered + r.not_found + r.failed + r.pending > 0 && r.status !== 'dry_run' && r.status !== 'held')
    lines.push(
      `  records: ampsignal runs records ${r.id} [--outcome delivered|not_found|failed|pending]; export: ampsignal runs export ${r.id} --format csv`,
    );
  return lines.join('\n');
}

/** What an Amplitude dry run cost of the monthly download budget. */
function downloadLine(d: DownloadNote): string {
  const left = `${d.remaining} of ${d.budget} remain this month`;
  if (d.spent === 0) return `used the last download (${d.snapshot_from}), no download spent; ${left}`;
  return `this dry run spent 1 of the source's monthly cohort downloads; ${left} (--use-last-snapshot reuses a download under a day old)`;
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
const outcomeSchema = z.enum(RECORD_OUTCOMES, { error: `must be one of ${RECORD_OUTCOMES.join(', ')}` });
const pageFlags = z.object({
  outcome: outcomeSchema.optional(),
  limit: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(1, 'must be at least 1').max(MAX_PAGE, `must be at most ${MAX_PAGE}`))
    .default(100),
  cursor: z.string().trim().min(1).max(2000).optional(),
});
const exportFlags = z.object({
  format: z.enum(EXPORT_FORMATS, { error: 'must be csv or ndjson' }),
  outcome: outcomeSchema.optional(),
  output: z.string().trim().min(1).optional(),
});

/** `skipped` (records skipped at OneSignal) is an older name for not_found; `all` is no filter. */
function outcomeOf(which: z.infer<typeof recordsSchema>): RecordOutcome | undefined {
  if (which === 'all') return undefined;
  return which === 'skipped' ? 'not_found' : which;
}

function recordLine(r: RunRecord): string {
  const status = r.status === null ? '' : `  ${r.status}`;
  return `  ${r.external_id}  ${r.operation}  ${r.outcome}${status}${r.message ? `  ${r.message}` : ''}${r.at ? `  ${r.at}` : ''}`;
}

/** A page's lines and, when more remain, the command that shows the next one. */
function pageLines(runId: string, page: RecordPage, flags: { outcome?: string; limit: number }): string[] {
  const lines = page.records.length ? page.records.map(recordLine) : ['  (no records)'];
  if (page.next_cursor) {
    const outcome = flags.outcome ? ` --outcome ${flags.outcome}` : '';
    lines.push(
      `  more remain: ampsignal runs records ${runId}${outcome} --limit ${flags.limit} --cursor ${page.next_cursor}`,
    );
  }
  return lines;
}

/** Writes the export to a file or stdout, waiting whenever the stream is full (1M records in one page's memory). */
async function writeExport(out: Writable, chunks: AsyncIterable<string>): Promise<void> {
  for await (const chunk of chunks) {
    if (!out.write(chunk)) await once(out, 'drain');
  }
}

export function register(program: Command): void {
  const runs = program.command('runs');

  runs
    .command('show')
    .description('Show a run; --records lists its first records (all of them: `runs records`, `runs export`)')
    .argument('<run_id>')
    .option('--records <which>', 'failed | not_found | skipped (= not_found) | pending | delivered | all')
    .option('--limit <n>', 'records on the page (default 1000)', '1000')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { records?: string; limit: string; json?: boolean }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      const which =
        flags.records === undefined
          ? undefined
          : parseInput(z.object({ records: recordsSchema }), { records: flags.records }).records;
      const { limit } = parseInput(pageFlags, { limit: flags.limit });
      await withContext(cmd, async (ctx) => {
        const run = await showRun(ctx, runId);
        if (!which) {
          emit(flags.json, run, () => runSummary(run));
          return;
        }
        const outcome = outcomeOf(which);
        const page = await runRecords(ctx, runId, { ...(outcome ? { outcome } : {}), limit });
        emit(flags.json, { ...run, records: page.records, next_cursor: page.next_cursor }, () =>
          [runSummary(run), ...pageLines(runId, page, { ...(outcome ? { outcome } : {}), limit })].join('\n'),
        );
      });
    });

  runs
    .command('records')
    .description("A page of a run's records (user order): outcome, vendor status and message, attempts, time")
    .argument('<run_id>')
    .option('--outcome <outcome>', RECORD_OUTCOMES.join(' | '))
    .option('--limit <n>', `records on the page (default 100, at most ${MAX_PAGE})`, '100')
    .option('--cursor <cursor>', 'where the previous page said more remain')
    .option('--json', 'print JSON only: {records, next_cursor}')
    .action(
      async (id: string, flags: { outcome?: string; limit: string; cursor?: string; json?: boolean }, cmd: Command) => {
        const runId = parseInput(idArg, id);
        const f = parseInput(pageFlags, flags);
        await withContext(cmd, async (ctx) => {
          const page = await runRecords(ctx, runId, f);
          emit(flags.json, page, () => pageLines(runId, page, f).join('\n'));
        });
      },
    );

  runs
    .command('export')
    .description('Every record of a run as CSV or NDJSON, streamed (to stdout, or --output FILE)')
    .argument('<run_id>')
    .requiredOption('--format <format>', 'csv | ndjson')
    .option('--outcome <outcome>', RECORD_OUTCOMES.join(' | '))
    .option('--output <file>', 'write to this file instead of stdout')
    .action(async (id: string, flags: { format: string; outcome?: string; output?: string }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      const f = parseInput(exportFlags, flags);
      await withContext(cmd, async (ctx) => {
        // An unknown run is refused before any file is created.
        const chunks = await exportRecords(ctx, runId, f.format, f.outcome ? { outcome: f.outcome } : {});
        const out = f.output ? createWriteStream(f.output, { mode: 0o600 }) : process.stdout;
        await writeExport(out, chunks);
        if (f.output) {
          out.end();
          await once(out, 'finish');
        }
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
        const list = await listRuns(ctx, { ...(f.sync ? { sync: f.sync } : {}), limit: f.limit });
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
        printRun(flags.json, await withProgressBar(flags.json, (progress) => approve(ctx, runId, progress)));
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
        const r = await reject(ctx, runId);
        emit(flags.json, r, () => runSummary(r));
      });
    });

  runs
    .command('retry')
    .description("Retry a finished run's users whose delivery failed for good, and deliver them")
    .argument('<run_id>')
    .option('--json', 'print JSON only: {requeued, run}')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const runId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const r = await withProgressBar(flags.json, (progress) => retryFailed(ctx, runId, progress));
        emit(flags.json, r, () =>
          [`re-queued ${r.requeued} failed user(s) of run ${runId}`, runSummary(r.run)].join('\n'),
        );
        if (r.run.status === 'failed') process.exitCode = 1;
      });
    });
}
