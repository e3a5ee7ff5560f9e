import type { Command } from 'commander';
import { z } from 'zod';
import { showUser, userSummary } from '../sync/user-history';
import { emit, parseInput, withContext } from './output';

const externalId = z.string().trim().min(1, 'an external id is required').max(1000, 'at most 1000 characters');

export function register(program: Command): void {
  const user = program.command('user');
  user
    .command('show')
    .description(
      "For each sync the user is in or was in: whether the tag is wanted and confirmed, the last outcomes with times and the vendor's message",
    )
    .argument('<external_id>')
    .option('--json', 'print JSON only')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const ext = parseInput(externalId, id);
      await withContext(cmd, async (ctx) => {
        const u = await showUser(ctx, ext);
        emit(flags.json, u, () => userSummary(u));
      });
    });
}
