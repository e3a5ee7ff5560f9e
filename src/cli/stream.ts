import type { Command } from 'commander';
import {
  addStream,
  deleteStream,
  listStreams,
  pauseStream,
  resumeStream,
  type StreamView,
  showStream,
  streamInputSchema,
  updateStream,
} from '../app/streams';
import { AmpError } from '../errors';
import { forwardStream } from '../events/forward';
import { keyOption, resolveKeys } from './key-input';
import { confirm, emit, parseInput, withContext } from './output';

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

interface StreamFlags {
  name?: string;
  amplitudeApiKey?: string;
  region?: string;
  amplitudeUrl?: string;
  eventName?: string[];
  json?: boolean;
}

function inputOf(f: StreamFlags, urlReset: boolean): Record<string, unknown> {
  const input: Record<string, unknown> = {
    name: f.name,
    amplitude_api_key: f.amplitudeApiKey,
    region: f.region,
    amplitude_url: urlReset && f.amplitudeUrl === '' ? null : f.amplitudeUrl,
    event_names: parseEventNames(f.eventName),
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function human(v: StreamView & { webhook_secret?: string }): string {
  const lines = [
    `${v.id}  ${v.name}  (${v.status}${v.status_reason ? `: ${v.status_reason}` : ''})`,
    `  webhook path:   ${v.webhook_path}`,
    `  amplitude:      ${v.amplitude_url} (${v.region})`,
  ];
  if (v.webhook_secret)
    lines.push(`  webhook secret: ${v.webhook_secret}   (send as "Authorization: Bearer <secret>"; shown once)`);
  lines.push(
    `  received ${v.received}, duplicates ${v.duplicates}, forwarded ${v.forwarded}, dead-lettered ${v.dead_lettered}, pending ${v.pending}`,
  );
  return lines.join('\n');
}

function settingOptions(cmd: Command): Command {
  cmd.option('--name <name>', 'a unique name');
  keyOption(cmd, 'amplitude-api-key', 'Amplitude project API key (stored encrypted)');
  return cmd
    .option('--region <region>', 'us or eu')
    .option('--amplitude-url <url>', 'HTTP V2 base URL override (emulator, proxy)')
    .option('--event-name <kind=name>', 'override an event name, repeatable', collect)
    .option('--json', 'print JSON');
}

export function register(program: Command): void {
  const stream = program.command('stream');

  settingOptions(
    stream
      .command('add')
      .description('add a stream; prints its webhook path and secret for the OneSignal Event Stream'),
  ).action(async (flags: StreamFlags, cmd: Command) => {
    await resolveKeys(flags as Record<string, unknown>, ['amplitude-api-key']);
    // Checked before the database opens, with the operation's own schema.
    const input = parseInput(streamInputSchema, inputOf(flags, false));
    await withContext(cmd, async (ctx) => {
      const v = await addStream(ctx, input);
      emit(flags.json, v, () => human(v));
    });
  });

  settingOptions(
    stream
      .command('update')
      .description(
        'change a stream\'s name, Amplitude key (a rotated key), region, URL ("" = by region) or event names',
      )
      .argument('<id>'),
  ).action(async (id: string, flags: StreamFlags, cmd: Command) => {
    await resolveKeys(flags as Record<string, unknown>, ['amplitude-api-key']);
    const patch = inputOf(flags, true);
    if (!Object.keys(patch).length) throw new AmpError('invalid_input', 'nothing to change: give at least one option');
    await withContext(cmd, async (ctx) => {
      const v = await updateStream(ctx, id, patch);
      emit(flags.json, v, () =>
        [
          `updated ${v.id}`,
          human(v),
          ...(v.status === 'paused'
            ? [`it is still paused: \`ampsignal stream resume ${v.id}\` checks the key and resumes`]
            : []),
        ].join('\n'),
      );
    });
  });

  stream
    .command('list')
    .description('list streams with their counters')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const views = await listStreams(ctx);
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
      await withContext(cmd, async (ctx) => {
        const v = await showStream(ctx, id);
        emit(flags.json, v, () => human(v));
      });
    });

  stream
    .command('forward')
    .description('forward the pending events of a stream to Amplitude now (a worker does this on its own)')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const r = await forwardStream(ctx, id);
        emit(
          flags.json,
          r,
          () =>
            `forwarded ${r.forwarded}, dead-lettered ${r.deadLettered}, pending ${r.pending} (${r.requests} requests; stream ${r.status})`,
        );
      });
    });

  stream
    .command('pause')
    .description('stop forwarding (events are still received and kept)')
    .argument('<id>')
    .option('--reason <text>', 'why (shown in show/list)', 'paused by user')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean; reason: string }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await pauseStream(ctx, id, flags.reason);
        emit(flags.json, v, () => human(v));
      });
    });

  stream
    .command('resume')
    .description('resume forwarding: checks the Amplitude key first, and stays paused if Amplitude still refuses it')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await resumeStream(ctx, id);
        emit(flags.json, v, () => human(v));
      });
    });

  stream
    .command('delete')
    .description('delete a stream with its outbox (events not yet forwarded and dead letters)')
    .argument('<id>')
    .option('--yes', 'do not ask for confirmation (scripts)')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean; yes?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await showStream(ctx, id);
        await confirm(
          `delete stream ${v.name} (${v.id})${v.pending ? ` and its ${v.pending} event(s) not yet forwarded` : ''}?`,
          flags.yes,
        );
        const r = await deleteStream(ctx, id);
        emit(flags.json, r, () => r.message);
      });
    });
}
