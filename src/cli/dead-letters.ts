import type { Command } from 'commander';
import { listDeadLetters, replay } from '../app/dead-letters';
import { emit, wholeNumberFlag, withContext } from './output';

function collectIds(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
}

export function register(program: Command): void {
  const dl = program.command('dead-letters');

  dl.command('list')
    .description('list dead letters')
    .option('--stream <id>', 'only this stream')
    .option('--limit <n>', 'at most this many (default 100, at most 1000)')
    .option('--json', 'print JSON')
    .action(async (flags: { stream?: string; limit?: string; json?: boolean }, cmd: Command) => {
      const limit = wholeNumberFlag(flags.limit, '--limit');
      await withContext(cmd, async (ctx) => {
        const rows = await listDeadLetters(ctx, { stream: flags.stream, limit });
        emit(flags.json, rows, () =>
          rows.length
            ? rows.map((r) => `${r.id}  ${r.stream_id}  ${r.kind}  ${r.event_id}\n    ${r.reason}`).join('\n')
            : 'no dead letters',
        );
      });
    });

  dl.command('replay')
    .description(
      'put dead letters back in the outbox to be forwarded again (same insert_id, so nothing doubles): --id for some, --all (or --stream alone) for every one',
    )
    .option('--stream <id>', 'only this stream (alone: all of its dead letters)')
    .option(
      '--id <ids...>',
      'only these (row id from "list", or OneSignal event id); repeatable or comma-separated',
      collectIds,
    )
    .option('--all', 'every dead letter (of --stream, if given)')
    .option('--json', 'print JSON')
    .action(async (flags: { stream?: string; id?: string[]; all?: boolean; json?: boolean }, cmd: Command) => {
      const all = flags.all === true || (!flags.id?.length && flags.stream !== undefined);
      await withContext(
        cmd,
        async (ctx) => {
          const r = await replay(ctx, { stream: flags.stream, ids: flags.id, ...(all ? { all } : {}) });
          emit(
            flags.json,
            r,
            () =>
              `replayed ${r.replayed} dead letter(s)${r.streams.length ? ` on ${r.streams.join(', ')}` : ''}; they are forwarded by the worker, or now with "ampsignal stream forward <id>"`,
          );
        },
        { ids: '--id' },
      );
    });
}
