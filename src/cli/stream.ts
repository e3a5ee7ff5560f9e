import type { Command } from 'commander';
import { z } from 'zod';
import { AmpError } from '../errors';
import { forwardStream } from '../events/forward';
import {
  createStream,
  getStream,
  listStreams,
  pauseStream,
  resumeStream,
  streamCounters,
  streamInputSchema,
  streamView,
} from '../events/streams';
import { keyOption, resolveKeys } from './key-input';
import { emit, parseInput, withContext } from './output';

const idArg = z.string().trim().min(1, 'a stream id is required');

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--event-name kind=Name` pairs → overrides; a person gets told which pair is malformed. */
function parseEventNames(pairs: string[] | undefined): Record<string, string> | undefined {
  if (!pairs?.length) return undefined;
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const i = p.indexOf('=');
    if (i <= 0 || i === p.length - 1)
      throw new AmpError(
        'invalid_input',
        `--event-name "${p}": use KIND=NAME, e.g. message.push.clicked="Push Clicked"`,
      );
    out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

function human(v: Record<string, unknown>): string {
  const lines = [
    `${v.id}  ${v.name}  (${v.status}${v.status_reason ? `: ${v.status_reason}` : ''})`,
    `  webhook path:   ${v.path}`,
    `  amplitude:      ${v.amplitude_url} (${v.region})`,
  ];
  if (v.webhook_secret)
    lines.push(`  webhook secret: ${v.webhook_secret}   (send as "Authorization: Bearer <secret>"; shown once)`);
  if (v.received !== undefined) {
    lines.push(
      `  received ${v.received}, duplicates ${v.duplicates}, forwarded ${v.forwarded}, dead-lettered ${v.dead_lettered}, pending ${v.pending}`,
    );
  }
  return lines.join('\n');
}

export function register(program: Command): void {
  const stream = program.command('stream');

  const add = stream
    .command('add')
    .description('add a stream; prints its webhook path and secret for the OneSignal Event Stream')
    .option('--name <name>', 'a unique name');
  keyOption(add, 'amplitude-api-key', 'Amplitude project API key (stored encrypted)');
  add
    .option('--region <region>', 'us or eu', 'us')
    .option('--amplitude-url <url>', 'HTTP V2 base URL override (emulator, proxy)')
    .option('--event-name <kind=name>', 'override an event name, repeatable', collect)
    .option('--json', 'print JSON')
    .action(
      async (
        flags: {
          name?: string;
          amplitudeApiKey?: string;
          region?: string;
          amplitudeUrl?: string;
          eventName?: string[];
          json?: boolean;
        },
        cmd: Command,
      ) => {
        await resolveKeys(flags as Record<string, unknown>, ['amplitude-api-key']);
        const eventNames = parseEventNames(flags.eventName);
        const input = parseInput(streamInputSchema, {
          name: flags.name,
          amplitudeApiKey: flags.amplitudeApiKey,
          region: flags.region,
          amplitudeUrl: flags.amplitudeUrl,
          eventNames,
        });
        await withContext(cmd, async (ctx) => {
          const { row, webhookSecret } = await createStream(ctx, input);
          emit(flags.json, streamView(row, { webhookSecret }), () => human(streamView(row, { webhookSecret })));
        });
      },
    );

  stream
    .command('list')
    .description('list streams with their counters')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const rows = await listStreams(ctx);
        const views = await Promise.all(
          rows.map(async (r) => streamView(r, { counters: await streamCounters(ctx, r.id) })),
        );
        emit(flags.json, views, () =>
          views.length
            ? views.map(human).join('\n')
            : 'no streams yet: ampsignal stream add --name … --amplitude-api-key …',
        );
      });
    });

  stream
    .command('show')
    .description('show a stream and its counters (received, duplicates, forwarded, dead_lettered, pending)')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const sid = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const v = streamView(await getStream(ctx, sid), { counters: await streamCounters(ctx, sid) });
        emit(flags.json, v, () => human(v));
      });
    });

  stream
    .command('forward')
    .description('forward the pending events of a stream to Amplitude now (a worker does this on its own)')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      const sid = parseInput(idArg, id);
      await withContext(cmd, async (ctx) => {
        const r = await forwardStream(ctx, sid);
        emit(
          flags.json,
          r,
          () =>
            `forwarded ${r.forwarded}, dead-lettered ${r.deadLettered}, pending ${r.pending} (${r.requests} requests; stream ${r.status})`,
        );
      });
    });

  for (const [name, desc] of [
    ['pause', 'stop forwarding (events are still received and kept)'],
    ['resume', 'resume forwarding after fixing the cause of a pause'],
  ] as const) {
    stream
      .command(name)
      .description(desc)
      .argument('<id>')
      .option('--reason <text>', 'why (pause only)')
      .option('--json', 'print JSON')
      .action(async (id: string, flags: { json?: boolean; reason?: string }, cmd: Command) => {
        const sid = parseInput(idArg, id);
        await withContext(cmd, async (ctx) => {
          if (name === 'pause') await pauseStream(ctx, sid, flags.reason ?? 'paused by hand');
          else await resumeStream(ctx, sid);
          const v = streamView(await getStream(ctx, sid));
          emit(flags.json, v, () => human(v));
        });
      });
  }
}
