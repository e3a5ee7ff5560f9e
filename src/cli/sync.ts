import type { Command } from 'commander';
import { z } from 'zod';
import { TAG_VALUE_KINDS } from '../connectors/onesignal/sync-tags';
import { CADENCES } from '../sync/cadence';
import { lastWebhookAt } from '../sync/cohort-webhooks';
import { runSync } from '../sync/run';
import { createSync, deleteSync, getSync, listSyncs, type SyncView, syncView } from '../sync/syncs';
import { emit, parseInput, withContext } from './output';
import { printRun, withProgressBar } from './runs';
import { registerVerify } from './verify';

const idArg = z.string().trim().min(1, 'a sync id is required');

const createSchema = z.object({
  cohort: z.string({ error: 'is required' }).trim().min(1, 'is required'),
  destination: z.string({ error: 'is required' }).trim().min(1, 'is required'),
  cadence: z.enum(CADENCES, { error: `must be one of ${CADENCES.join(', ')}` }).default('manual'),
  tagValue: z.enum(TAG_VALUE_KINDS, { error: `must be one of ${TAG_VALUE_KINDS.join(', ')}` }).default('presence'),
  guardThreshold: z
    .string()
    .regex(/^\s*(0(\.\d+)?|1(\.0+)?)\s*$/, 'must be a share between 0 and 1, e.g. 0.5')
    .transform((s) => Number(s))
    .refine((n) => n > 0, 'must be greater than 0')
    .optional(),
  json: z.boolean().optional(),
});

function syncLines(s: SyncView & { last_webhook_at?: string | null }): string {
  return [
    `${s.id}  cohort ${s.cohort_id} → destination ${s.destination_id}  (${s.cadence}, ${s.status})`,
    `  tag key: ${s.tag_key} (${s.tag_value === 'entered_at' ? 'entry time' : '"1"'})   segment: ${s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : '-')}`,
    `  guard: holds runs removing more than ${Math.round(s.guard_threshold * 100)}% of members   last run: ${s.last_run_id ?? '-'}`,
    ...(s.last_webhook_at === undefined ? [] : [`  last cohort webhook: ${s.last_webhook_at ?? 'never'}`]),
  ].join('\n');
}

export function register(program: Command): void {
  const sync = program.command('sync');

  sync
    .command('create')
    .description('Sync a cohort to a destination (creates the OneSignal segment too)')
    .requiredOption('--cohort <cohort_id>', 'cohort id')
    .requiredOption('--destination <id>', 'destination id')
    .option('--cadence <cadence>', `one of ${CADENCES.join(', ')}`, 'manual')
    .option(
      '--tag-value <kind>',
      'presence (the tag is "1") or entered_at (the Unix time the user entered the cohort, for time_elapsed segment filters)',
      'presence',
    )
    .option('--guard-threshold <share>', 'hold runs that would remove more than this share of members (default 0.5)')
    .option('--json', 'print JSON only')
    .action(async (flags: Record<string, unknown>, cmd: Command) => {
      const f = parseInput(createSchema, flags);
      await withContext(cmd, async (ctx) => {
        const s = syncView(
          await createSync(ctx, {
            cohortId: f.cohort,
            destinationId: f.destination,
            cadence: f.cadence,
            tagValue: f.tagValue,
            ...(f.guardThreshold !== undefined ? { guardThreshold: f.guardThreshold } : {}),
          }),
        );
        emit(f.json, s, () => `Created sync\n${syncLines(s)}\n  next: ampsignal sync run ${s.id} [--dry-run]`);
      });
    });

  sync
    .command('run')
    .description('Run a sync to the end: fetch, diff, deliver (retries included), then print the run')
    .argument('<sync_id>')
    .option('--dry-run', 'report adds, removes and samples; write and send nothing')
    .option(
      '--use-last-snapshot',
      "with --dry-run on an Amplitude cohort: diff against the last download (under a day old) instead of spending one of the month's downloads",
    )
    .option('--json', 'print JSON only')
    .action(
      async (id: string, flags: { dryRun?: boolean; useLastSnapshot?: boolean; json?: boolean }, cmd: Command) => {
        const syncId = parseInput(idArg, id);
        await withContext(cmd, async (ctx) => {
          const r = await withProgressBar(flags.json, (progress) =>
            runSync(ctx, syncId, {
              dryRun: flags.dryRun === true,
              trigger: 'manual',
              deliver: 'inline',
              ...(flags.useLastSnapshot ? { useLastSnapshot: true } : {}),
              ...progress,
            }),
          );
          printRun(flags.json, r);
        });
      },
    );

  sync
    .command('list')
    .description('List syncs')
    .option('--json', 'print JSON only')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const list = (await listSyncs(ctx)).map(syncView);
        emit(flags.json, list, () =>
          list.length
            ? list.map(syncLines).join('\n')
            : 'No syncs yet: ampsignal sync create --cohort C --destination D',
        );
      });
    });

  sync
    .command('show')
    .description('Show one sync')
    .argument('<sync_id>')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const syncId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const row = await getSync(ctx, syncId);
        const at = await lastWebhookAt(ctx, row.cohort_id);
        const s = { ...syncView(row), last_webhook_at: at === null ? null : new Date(at).toISOString() };
        emit(flags.json, s, () => syncLines(s));
      });
    });

  sync
    .command('delete')
    .description('Delete a sync: removes its tag from every user at OneSignal, then forgets it')
    .argument('<sync_id>')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const syncId = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const r = await deleteSync(ctx, syncId);
        emit(flags.json, r, () =>
          r.deleted
            ? `Deleted sync ${r.id}: tag removed from ${r.removed} user(s)`
            : `Sync ${r.id} is deleting: ${r.pending} tag removal(s) not yet delivered; run \`ampsignal sync delete ${r.id}\` again`,
        );
        if (!r.deleted) process.exitCode = 1;
      });
    });

  registerVerify(sync);
}
