import type { Command } from 'commander';
import { listDeadLetters, replayDeadLetters } from '../events/dead-letters';
import { emit, withContext } from './output';

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
    .option('--limit <n>', 'at most this many (default 1000)')
    .option('--json', 'print JSON')
    .action(async (flags: { stream?: string; limit?: string; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const rows = await listDeadLetters(ctx, {
          stream: flags.stream,
          ...(flags.limit ? { limit: flags.limit as unknown as number } : {}),
        });
        emit(flags.json, rows, () =>
          rows.length
            ? rows.map((r) => `${r.id}  ${r.stream_id}  ${r.kind}  ${r.event_id}\n    ${r.reason}`).join('\n')
            : 'no dead letters',
        );
      });
    });

  dl.command('replay')
    .description('put dead letters back in the outbox to be forwarded again (same insert_id, so nothing doubles)')
    .option('--stream <id>', 'only this stream')
    .option(
      '--id <ids...>',
      'only these (row id from "list", or OneSignal event id); repeatable or comma-separated',
      collectIds,
    )
    .option('--json', 'print JSON')
    .action(async (flags: { stream?: string; id?: string[]; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await replayDeadLetters(ctx, { stream: flags.stream, ...(flags.id ? { ids: flags.id } : {}) });
        emit(
          flags.json,
          r,
          () =>
            `replayed ${r.replayed} dead letter(s)${r.streams.length ? ` on ${r.streams.join(', ')}` : ''}; they are forwarded by the worker, or now with "ampsignal stream forward <id>"`,
        );
      });
    });
}
