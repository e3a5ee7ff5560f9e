import type { Command } from 'commander';
import {
  addDestination,
  type DestinationDeletion,
  type DestinationView,
  deleteDestination,
  listDestinations,
  pauseDestination,
  resumeDestination,
  showDestination,
  testDestination,
  updateDestination,
} from '../app/destinations';
import { getConnector } from '../connectors/catalog';
import { AmpError } from '../errors';
import { keyOption, resolveKeys } from './key-input';
import { confirm, emit, wholeNumberFlag, withContext } from './output';

// Settings fields as the flags a person typed, so a complaint names the flag to fix.
const FLAGS: Record<string, string> = {
  max_tags_per_user: '--max-tags',
  rate_limit_per_second: '--rate-limit',
  source_id: '--source',
};

interface SettingFlags {
  name?: string;
  apiKey?: string;
  apiUrl?: string;
  tagKeyTemplate?: string;
  externalIdProperty?: string;
  maxTags?: string;
  rateLimit?: string;
  json?: boolean;
}

/** The flags a person gave, as the operation's input (fields not given stay absent). */
function settingsOf(flags: SettingFlags): Record<string, unknown> {
  const input: Record<string, unknown> = {
    name: flags.name,
    api_key: flags.apiKey,
    api_url: flags.apiUrl,
    tag_key_template: flags.tagKeyTemplate,
    external_id_property: flags.externalIdProperty,
    max_tags_per_user: wholeNumberFlag(flags.maxTags, '--max-tags'),
    rate_limit_per_second: wholeNumberFlag(flags.rateLimit, '--rate-limit'),
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

function human(v: DestinationView): string {
  return [
    `${v.id}  ${v.name}  (${v.kind}, ${v.status}${v.status_reason ? `: ${v.status_reason}` : ''})`,
    `  app id:              ${v.app_id}`,
    `  api url:             ${v.api_url}`,
    `  source:              ${v.source_id ?? '-'}`,
    `  tag key template:    ${v.tag_key_template}`,
    `  external id from:    ${v.external_id_property}`,
    `  max tags per user:   ${v.max_tags_per_user}`,
    `  rate limit:          ${v.rate_limit_per_second}/s`,
    `  pending rows:        ${v.pending_rows}`,
  ].join('\n');
}

function settingOptions(cmd: Command, what: 'add' | 'update'): Command {
  const dflt = (d: string) => (what === 'add' ? ` (default ${d})` : '');
  cmd.option('--name <name>', 'a unique name, e.g. "OneSignal - My App"');
  keyOption(cmd, 'api-key', 'OneSignal App API key (stored encrypted)');
  return cmd
    .option('--api-url <url>', `API base URL${dflt('https://api.onesignal.com')}`)
    .option(
      '--tag-key-template <t>',
      `tag key per cohort; must contain {cohort_id}${dflt('amp_cohort_{cohort_id}')}; fixed once a sync uses it`,
    )
    .option(
      '--external-id-property <p>',
      `Amplitude field that becomes the OneSignal external_id${dflt('user_id')}; fixed once a sync uses it`,
    )
    .option('--max-tags <n>', `cohort tags a user may carry on your plan${dflt('10')}`)
    .option('--rate-limit <n>', `requests per second for this app${dflt('1000')}`)
    .option('--json', 'print JSON');
}

function deletionText(r: DestinationDeletion): string {
  const lines = [r.message];
  for (const s of r.syncs)
    lines.push(
      `  ${s.id}: ${s.deleted ? 'deleted' : 'still deleting'}, ${s.removed} tag(s) removed${s.pending ? `, ${s.pending} pending` : ''}${s.segment_error ? `; segment not deleted: ${s.segment_error}` : ''}`,
    );
  return lines.join('\n');
}

export function register(program: Command): void {
  const dest = program.command('destination');

  settingOptions(
    dest
      .command('add')
      .description('add a destination (connector: onesignal); one destination per OneSignal app')
      .argument('<connector>', 'connector id, e.g. onesignal')
      .option('--app-id <id>', 'OneSignal App ID (Settings > Keys & IDs)')
      .option('--source <id>', 'the Amplitude source this destination serves'),
    'add',
  ).action(async (connector: string, flags: SettingFlags & { appId?: string; source?: string }, cmd: Command) => {
    if (getConnector(connector).id !== 'onesignal') {
      throw new AmpError('invalid_input', `destinations of connector "${connector}" cannot be added here`);
    }
    await resolveKeys(flags as Record<string, unknown>, ['api-key']);
    const missing = (['--name', '--app-id', '--api-key'] as const).filter(
      (f) => !flags[({ '--name': 'name', '--app-id': 'appId', '--api-key': 'apiKey' } as const)[f]],
    );
    if (missing.length) throw new AmpError('invalid_input', `missing ${missing.join(', ')}`);
    const input = { ...settingsOf(flags), app_id: flags.appId, source_id: flags.source };
    await withContext(
      cmd,
      async (ctx) => {
        const v = await addDestination(ctx, input);
        emit(flags.json, v, () => `added destination ${v.id}\n${human(v)}`);
      },
      FLAGS,
    );
  });

  settingOptions(
    dest
      .command('update')
      .description('change a destination: name, API key (a rotated key), URL, tag budget, rate limit')
      .argument('<id>', 'destination id'),
    'update',
  ).action(async (id: string, flags: SettingFlags, cmd: Command) => {
    await resolveKeys(flags as Record<string, unknown>, ['api-key']);
    const patch = settingsOf(flags);
    if (!Object.keys(patch).length) throw new AmpError('invalid_input', 'nothing to change: give at least one option');
    await withContext(
      cmd,
      async (ctx) => {
        const v = await updateDestination(ctx, id, patch);
        emit(flags.json, v, () =>
          [
            `updated ${v.id}`,
            human(v),
            ...(v.status === 'paused' && patch.api_key
              ? [`it is still paused: resume it with \`ampsignal destination resume ${v.id}\``]
              : []),
          ].join('\n'),
        );
      },
      FLAGS,
    );
  });

  dest
    .command('test')
    .description("check the destination's app id and key against OneSignal (exit 1 when refused)")
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const [r, v] = await Promise.all([testDestination(ctx, id), showDestination(ctx, id)]);
        emit(flags.json, r, () =>
          [
            r.ok ? `ok: ${v.name} (${r.app_id}) accepted the key (${r.latency_ms} ms)` : `failed: ${r.message}`,
            ...(r.ok && v.status === 'paused'
              ? [
                  `the destination is paused (${v.status_reason ?? 'no reason'}): resume it with \`ampsignal destination resume ${v.id}\``,
                ]
              : []),
          ].join('\n'),
        );
        if (!r.ok) process.exitCode = 1;
      });
    });

  dest
    .command('list')
    .description('list destinations')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const views = await listDestinations(ctx);
        emit(flags.json, views, () =>
          views.length
            ? views
                .map(
                  (v) =>
                    `${v.id}  ${v.name}  app ${v.app_id}  ${v.status}${v.status_reason ? ` (${v.status_reason})` : ''}`,
                )
                .join('\n')
            : 'no destinations yet: add one with `ampsignal destination add onesignal --name … --app-id … --api-key …`',
        );
      });
    });

  dest
    .command('show')
    .description('show one destination (never its key)')
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await showDestination(ctx, id);
        emit(flags.json, v, () => human(v));
      });
    });

  dest
    .command('pause')
    .description('stop delivering to a destination')
    .argument('<id>', 'destination id')
    .option('--reason <text>', 'why (shown in show/list)', 'paused by user')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { reason: string; json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await pauseDestination(ctx, id, flags.reason);
        emit(flags.json, v, () => `paused ${v.id} (${v.name}): ${v.status_reason}`);
      });
    });

  dest
    .command('resume')
    .description('resume delivering to a paused destination')
    .argument('<id>', 'destination id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, cmd: Command) => {
      await withContext(cmd, async (ctx) => {
        const v = await resumeDestination(ctx, id);
        emit(flags.json, v, () => `resumed ${v.id} (${v.name})`);
      });
    });

  dest
    .command('delete')
    .description('delete a destination and its syncs; --remove-tags also removes their tags and segments at OneSignal')
    .argument('<id>', 'destination id')
    .option('--remove-tags', 'remove the tags its syncs set, and their segments, from OneSignal first')
    .option('--keep-tags', 'leave tags and segments in OneSignal; only ampsignal forgets them')
    .option('--yes', 'do not ask for confirmation (scripts)')
    .option('--json', 'print JSON')
    .action(
      async (
        id: string,
        flags: { removeTags?: boolean; keepTags?: boolean; yes?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        if (flags.removeTags === flags.keepTags)
          throw new AmpError(
            'invalid_input',
            'say what happens to its tags in OneSignal: --remove-tags or --keep-tags',
          );
        await withContext(cmd, async (ctx) => {
          const v = await showDestination(ctx, id);
          await confirm(
            `delete destination ${v.name} (${v.id}) and its syncs${flags.removeTags ? ', removing their tags and segments from OneSignal' : ''}?`,
            flags.yes,
          );
          const r = await deleteDestination(ctx, id, { removeTags: Boolean(flags.removeTags) });
          emit(flags.json, r, () => deletionText(r));
          if (!r.deleted) process.exitCode = 1;
        });
      },
    );
}
