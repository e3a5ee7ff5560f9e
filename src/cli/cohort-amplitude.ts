import type { Command } from 'commander';
import { z } from 'zod';
import { listSourceCohorts } from '../connectors/amplitude/cohorts';
import { emit, parseInput, withContext } from './output';

const flags = z.object({
  source: z.string().trim().regex(/^src_[A-Za-z0-9_-]+$/, 'a source id looks like src_… (see `ampsignal source list`)'),
  refresh: z.boolean().optional(),
  json: z.boolean().optional(),
});

type ActionHandler = (args: unknown[]) => unknown;

/**
 * Adds `--source ID [--refresh]` to `cohort list`. The engine's `cohort list` (file cohorts)
 * may already exist: commander cannot merge two subcommands of one name, so we extend that one
 * and fall through to its own action when --source is absent.
 */
export function registerAmplitudeCohortCommands(cohort: Command): void {
  let list = cohort.commands.find((c) => c.name() === 'list');
  if (!list) {
    list = cohort.command('list').description('list cohorts').option('--json', 'print JSON');
  }
  if (!list.options.some((o) => o.long === '--json')) list.option('--json', 'print JSON');
  list
    .option('--source <id>', "list an Amplitude source's cohorts (id, name, size, last computed)")
    .option('--refresh', 'fetch the list from Amplitude again (free: not a download)');

  // commander keeps the action in a private field; wrapping it is the only way to extend a
  // subcommand registered elsewhere without a second `list`.
  const target = list as unknown as { _actionHandler: ActionHandler | null };
  const original = target._actionHandler;
  const cmd = list;
  target._actionHandler = async (args: unknown[]) => {
    const opts = cmd.opts() as { source?: string; refresh?: boolean; json?: boolean };
    if (opts.source === undefined) {
      if (original) return original.call(cmd, args);
      return parseInput(flags, opts); // complains that --source is required
    }
    const f = parseInput(flags, opts);
    await withContext(cmd, async (ctx) => {
      const cohorts = await listSourceCohorts(ctx, f.source, { refresh: f.refresh ?? false });
      emit(f.json, cohorts, () =>
        cohorts.length
          ? cohorts
              .map((c) => `${c.id}  ${c.name}  ${c.size ?? '?'} users  computed ${c.last_computed ? new Date(c.last_computed).toISOString() : 'never'}`)
              .join('\n')
          : `source ${f.source} has no cohorts in Amplitude`,
      );
    });
  };
}
