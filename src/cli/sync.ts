import type { Command } from 'commander';
import {
  addSync,
  listSyncs,
  pauseSync,
  removeSync,
  resumeSync,
  type SyncView,
  showSync,
  syncInputSchema,
  updateSync,
} from '../app/syncs';
import { AmpError } from '../errors';
import { CADENCES } from '../sync/cadence';
import { lastWebhookAt } from '../sync/cohort-webhooks';
import { runSync } from '../sync/run';
import { confirm, emit, parseInput, withContext } from './output';
import { printRun, withProgressBar } from './runs';
import { registerVerify } from './verify';

function syncLines(s: SyncView & { last_webhook_at?: string | null }): string {
  return [
    `${s.id}  cohort ${s.cohort_id} → destination ${s.destination_id}  (${s.cadence}, ${s.status})`,
    `  tag key: ${s.tag_key} (${s.tag_value === 'entered_at' ? 'entry time' : '"1"'})   segment: ${s.segment_id ?? (s.segment_error ? `not created: ${s.segment_error}` : '-')}`,
    `  guard: holds runs removing more than ${Math.round(s.guard_threshold * 100)}% of confirmed members   last run: ${s.last_run ? `${s.last_run.id} (${s.last_run.status})` : '-'}`,
    ...(s.last_webhook_at === undefined ? [] : [`  last cohort webhook: ${s.last_webhook_at ?? 'never'}`]),
  ].join('\n');
}

/** `--guard-threshold 0.5` as a number; the operation's schema says what a share must be. */
function shareFlag(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.trim());
  if (v.trim() === '' || Number.isNaN(n))
    throw new AmpError('invalid_input', '--guard-threshold: must be a share between 0 and 1, e.g. 0.5');
  return n;
}

const FLAGS = {
  cohort_id: '--cohort',
  destination_id: '--destination',
  reuse_segment_id: '--reuse-segment',
};

export function register(program: Command): void {
  const sync = program.command('sync');

  sync
    .command('create')
    .description('Sync a cohort to a destination (creates the OneSignal segment too)')
    .option('--cohort <cohort_id>', 'cohort id')
    .option('--destination <id>', 'destination id')
    .option('--cadence <cadence>', `one of ${CADENCES.join(', ')}`, 'manual')
    .option(
      '--tag-value <kind>',
      'presence (the tag is "1") or entered_at (the Unix time the user entered the cohort, for time_elapsed segment filters)',
      'presence',
    )
    .option(
      '--guard-threshold <share>',
      'hold runs that would remove more than this share of confirmed members (default 0.5)',
    )
    .option('--segment-name <name>', 'name the OneSignal segment (default: the cohort name)')
    .option('--reuse-segment <segment_id>', 'use this existing OneSignal segment instead of creating one')
    .option('--json', 'print JSON only')
    .action(
      async (
        f: {
          cohort?: string;
          destination?: string;
          cadence: string;
          tagValue: string;
          guardThreshold?: string;
          segmentName?: string;
          reuseSegment?: string;
          json?: boolean;
        },
        cmd: Command,
      ) => {
        const input = {
          cohort_id: f.cohort,
          destination_id: f.destination,
          cadence: f.cadence,
          tag_value: f.tagValue,
          guard_threshold: shareFlag(f.guardThreshold),
          segment_name: f.segmentName,
          reuse_segment_id: f.reuseSegment,
        };
        // Checked before the database opens, with the operation's own schema.
        parseInput(syncInputSchema, input, FLAGS);
        await withContext(
          cmd,
          async (ctx) => {
            const s = await addSync(ctx, input);
            emit(f.json, s, () => `Created sync\n${syncLines(s)}\n  next: ampsignal sync run ${s.id} [--dry-run]`);
          },
          FLAGS,
        );
      },
    );

  sync
    .command('update')
    .description("Change a sync's cadence or guard threshold")
    .argument('<sync_id>')
    .option('--cadence <cadence>', `one of ${CADENCES.join(', ')}`)
    .option('--guard-threshold <share>', 'hold runs that would remove more than this share of confirmed members')
    .option('--json', 'print JSON only')
    .action(async (id: string, f: { cadence?: string; guardThreshold?: string; json?: boolean }, cmd: Command) => {
      const patch = Object.fromEntries(
        Object.entries({ cadence: f.cadence, guard_threshold: shareFlag(f.guardThreshold) }).filter(
          ([, v]) => v !== undefined,
        ),
      );
      if (!Object.keys(patch).length)
        throw new AmpError('invalid_input', 'nothing to change: give --cadence or --guard-threshold');
      await withContext(cmd, async (ctx) => {
        const s = await updateSync(ctx, id, patch);
        emit(f.json, s, () => `Updated sync\n${syncLines(s)}`);
      });
    });

  for (const [name, op, desc] of [
    ['pause', pauseSync, 'Pause a sync: no scheduled or manual runs until resumed (tags stay)'],
    ['resume', resumeSync, 'Resume a paused sync'],
  ] as const) {
    sync
      .command(name)
      .description(desc)
      .argument('<sync_id>')
      .option('--json', 'print JSON only')
      .action(async (id: string, f: { json?: boolean }, cmd: Command) => {
        await withContext(cmd, async (ctx) => {
          const s = await op(ctx, id);
          emit(f.json, s, () => syncLines(s));
        });
      });
  }

  sync
    .command('run')
    .description('Run a sync to the end: fetch, diff, deliver (retries included), then print the run')
    .argument('<sync_id>')
    .option(
      '--dry-run',
      'report adds, removes and samples, and whether a real run would be held; write and send nothing',
    )
    .option(
      '--use-last-snapshot',
      "with --dry-run on an Amplitude cohort: diff against the last download (under a day old) instead of spending one of the month's downloads",
    )
    .option('--json', 'print JSON only')
    .action(
      async (id: string, flags: { dryRun?: boolean; useLastSnapshot?: boolean; json?: boolean }, cmd: Command) => {
        await withContext(cmd, async (ctx) => {
          const r = await withProgressBar(flags.json, (progress) =>
            runSync(ctx, id, {
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
        const list = await listSyncs(ctx);
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
      await withContext(cmd, async (ctx) => {
        const shown = await showSync(ctx, id);
        const at = await lastWebhookAt(ctx, shown.cohort_id);
        const s = { ...shown, last_webhook_at: at === null ? null : new Date(at).toISOString() };
        emit(flags.json, s, () => syncLines(s));
      });
    });

  sync
    .command('delete')
    .description(
      'Delete a sync: removes its tag from the users OneSignal confirmed it on and its segment, then forgets it',
    )
    .argument('<sync_id>')
    .option('--yes', 'do not ask for confirmation (scripts)')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean; yes?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const s = await showSync(ctx, id);
        await confirm(
          `delete sync ${s.id} (cohort ${s.cohort_name ?? s.cohort_id} → ${s.destination_name ?? s.destination_id}), removing its tag "${s.tag_key}" and its segment from OneSignal?`,
          flags.yes,
        );
        const r = await removeSync(ctx, id);
        emit(flags.json, r, () =>
          r.deleted
            ? `Deleted sync ${r.id}: tag removed from ${r.removed} user(s)${r.segment_deleted ? `, segment ${r.segment_deleted} deleted` : ''}${r.segment_error ? `; segment not deleted: ${r.segment_error}` : ''}`
            : `Sync ${r.id} is deleting: ${r.pending} tag removal(s) not yet delivered; run \`ampsignal sync delete ${r.id}\` again`,
        );
        if (!r.deleted) process.exitCode = 1;
      });
    });

  registerVerify(sync);
}
