import type { Command } from 'commander';
import { z } from 'zod';
import {
  type CohortView,
  cohortIdSchema,
  cohortNameSchema,
  deleteCohort,
  importCohortFromFile,
  listCohorts,
  listCohortsOfSource,
} from '../app/cohorts';
import { confirm, emit, parseInput, withContext } from './output';

const importSchema = z.object({
  file: z
    .string({ error: 'is required (a CSV with a user_id column, or one id per line)' })
    .trim()
    .min(1, 'is required'),
  name: cohortNameSchema,
  id: cohortIdSchema.optional(),
  json: z.boolean().optional(),
});

const listSchema = z
  .object({
    source: z
      .string()
      .trim()
      .regex(/^src_[A-Za-z0-9_-]+$/, 'a source id looks like src_… (see `ampsignal source list`)')
      .optional(),
    refresh: z.boolean().optional(),
    json: z.boolean().optional(),
  })
  .refine((f) => !f.refresh || f.source, { message: '--refresh needs --source', path: ['refresh'] });

function cohortLine(c: CohortView): string {
  return `${c.id}  ${c.name}  (${c.origin}, ${c.size ?? '?'} members${c.blank_ids ? `, ${c.blank_ids} blank` : ''})`;
}

export function register(program: Command): void {
  const cohort = program.command('cohort');

  cohort
    .command('import')
    .description(
      'Import (or, with the same --id, replace) a cohort from a CSV with a user_id column or a file of one id per line',
    )
    .requiredOption('--file <path>', 'CSV with a user_id header column, or one id per line')
    .requiredOption('--name <name>', 'cohort name (also the OneSignal segment name)')
    .option(
      '--id <cohort_id>',
      'cohort id (default: a new id); importing again with the same id replaces the membership',
    )
    .option('--json', 'print JSON only')
    .action(async (flags: Record<string, unknown>, cmd: Command) => {
      const f = parseInput(importSchema, flags);
      await withContext(cmd, async (ctx) => {
        const r = await importCohortFromFile(ctx, { file: f.file, name: f.name, ...(f.id ? { id: f.id } : {}) });
        emit(f.json, r, () =>
          [
            `${r.replaced ? 'Replaced' : 'Imported'} cohort ${r.cohort_id} "${r.name}": ${r.members} members`,
            `  skipped: ${r.blank} blank, ${r.duplicates} duplicate; trimmed: ${r.trimmed}`,
            `  next: ampsignal sync create --cohort ${r.cohort_id} --destination DESTINATION_ID`,
          ].join('\n'),
        );
      });
    });

  cohort
    .command('list')
    .description('List known cohorts, or with --source the cohorts of an Amplitude project')
    .option('--source <id>', "list an Amplitude source's cohorts (id, name, size, last computed)")
    .option('--refresh', 'with --source: fetch the list from Amplitude again (free: not a download)')
    .option('--json', 'print JSON only')
    .action(async (flags: Record<string, unknown>, cmd: Command) => {
      const f = parseInput(listSchema, flags);
      await withContext(cmd, async (ctx) => {
        if (f.source) {
          const cohorts = await listCohortsOfSource(ctx, f.source, { refresh: f.refresh ?? false });
          emit(f.json, cohorts, () =>
            cohorts.length
              ? cohorts
                  .map(
                    (c) =>
                      `${c.id}  ${c.name}  ${c.size ?? '?'} users  computed ${c.last_computed ? new Date(c.last_computed).toISOString() : 'never'}`,
                  )
                  .join('\n')
              : `source ${f.source} has no cohorts in Amplitude`,
          );
          return;
        }
        const list = await listCohorts(ctx);
        emit(f.json, list, () =>
          list.length ? list.map(cohortLine).join('\n') : 'No cohorts yet: ampsignal cohort import --file F --name N',
        );
      });
    });

  cohort
    .command('delete')
    .description('delete a cohort and its stored members (refused while a sync uses it)')
    .argument('<cohort_id>')
    .option('--yes', 'do not ask for confirmation (scripts)')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { yes?: boolean; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        await confirm(`delete cohort ${id} and its stored members?`, flags.yes);
        const r = await deleteCohort(ctx, id);
        emit(flags.json, r, () => `deleted cohort ${r.id} (${r.members} member(s))`);
      });
    });
}
